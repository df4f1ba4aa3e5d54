// Package login is stile's two-step sign-in: a password, then a one-time
// code.
//
// One state machine, Flow, holds all of it; stile's HTML pages (Handler) and
// later the JSON API and the direct mode are thin front ends that decode
// input, call a step and render the typed result or *Error.
//
// The rules it keeps (see DESIGN.md):
//   - A login is bound to the browser that started it (Binder): the MAC of a
//     cookie set at the /login hand-off is recorded on the authorization
//     request and checked at every step on the pages, at the JSON API's
//     session ticket and at the provider's callback.
//   - A transaction belongs to the door that opened it — the pages, the
//     JSON API, the direct mode or the authorization challenge endpoint
//     (challenge.go) — and every other door refuses it (doors.go).
//     The JSON API opens one only with the loginToken that /login gave the
//     bound browser's page, so nobody else can sign that browser in.
//   - Unknown usernames and wrong passwords cost one argon2id computation
//     each and get the same answer.
//   - Failures count per account in the database (unknown names by HMAC),
//     with an exponential, capped, always-expiring lock.
//   - A TOTP step is accepted once per user, across instances; wrong codes
//     are bounded per transaction.
//   - A TOTP secret is never shown to someone who proved only a password:
//     EnrollTOTP is for operators.
//   - Forgot password (forgot.go, reset.go) answers the same for every
//     name and works after the answer; its link is single-use, short-lived,
//     bound to the first browser, and asks for the second factor before a
//     new password.
//   - Users identify themselves as the deployment chose (SignInWith:
//     username, email or phone), through one lookup every door shares
//     (identifier.go).
//   - A client may offer passwordless sign-in by code (passwordless.go):
//     one factor, labelled so (amr ["otp"], no mfa), silent for identifiers
//     nobody has, and its session answers no client that did not opt in.
//   - Self-service sign-up (signup.go) makes no user until the email
//     address is proven and the second factor set up; it never tells
//     whether an address has an account, and a taken username only to the
//     address's proven owner.
//
// The package knows nothing of the OpenID library: the provider's callback
// URL comes in as a function, and an authorization request that must end
// with an error (login_required) is marked in the store for the callback
// to answer.
package login
