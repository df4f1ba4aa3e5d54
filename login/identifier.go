package login

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/stile-id/stile/storage"
)

// Identifier kinds: what a deployment's users type to say who they are
// (stile serve --sign-in-with).
const (
	IdentifyByUsername = "username"
	IdentifyByEmail    = "email"
	IdentifyByPhone    = "phone"
)

// SignInWith is the operator's choice of identifiers, in the order given:
// one kind, or several ("username,email"). Empty: usernames alone.
//
// With several, the identifier's shape picks the lookups, always the same
// ones for the same input: something with an '@' is looked up as an email
// address, something E.164 accepts ("+44 20 7946 0000") as a phone number,
// and — if usernames are on — then as a username, so an account whose
// username is an address still signs in with it. Everything else is a
// username. Each lookup is by the unique normalised key, so at most one
// account matches each; the first match wins, and the answer (and the
// throttle's counting) never says which kind it was.
type SignInWith []string

// ParseSignInWith reads the operator's setting: "username", "email",
// "phone", or a comma-separated list of them.
func ParseSignInWith(s string) (SignInWith, error) {
	var out SignInWith
	for _, k := range strings.Split(s, ",") {
		k = strings.ToLower(strings.TrimSpace(k))
		switch k {
		case IdentifyByUsername, IdentifyByEmail, IdentifyByPhone:
		default:
			return nil, fmt.Errorf("sign-in identifier %q: use username, email, phone, or a comma-separated list of them", k)
		}
		if out.has(k) {
			return nil, fmt.Errorf("sign-in identifier %q is listed twice", k)
		}
		out = append(out, k)
	}
	return out, nil
}

func (w SignInWith) kinds() SignInWith {
	if len(w) == 0 {
		return SignInWith{IdentifyByUsername}
	}
	return w
}

func (w SignInWith) has(kind string) bool {
	for _, k := range w {
		if k == kind {
			return true
		}
	}
	return false
}

// String is the setting as ParseSignInWith reads it.
func (w SignInWith) String() string { return strings.Join(w.kinds(), ",") }

// Label names the identifier on the sign-in page: "Username", "Email
// address", "Username or email address"…
func (w SignInWith) Label() string {
	names := map[string]string{IdentifyByUsername: "username", IdentifyByEmail: "email address", IdentifyByPhone: "phone number"}
	var parts []string
	for _, k := range w.kinds() {
		parts = append(parts, names[k])
	}
	s := strings.Join(parts, " or ")
	return strings.ToUpper(s[:1]) + s[1:]
}

// InputType is the sign-in page's input type for the identifier: email or
// tel when it is the only kind (the right keyboard on a phone), else text.
func (w SignInWith) InputType() string {
	switch k := w.kinds(); {
	case len(k) > 1:
		return "text"
	case k[0] == IdentifyByEmail:
		return "email"
	case k[0] == IdentifyByPhone:
		return "tel"
	}
	return "text"
}

// invalidCredentials is the answer to a wrong password or an identifier
// nobody has: one text for both, naming the deployment's identifier.
func (w SignInWith) invalidCredentials() string {
	if len(w.kinds()) == 1 && w.kinds()[0] == IdentifyByUsername {
		return msgInvalidCredentials
	}
	return "The " + strings.ToLower(w.Label()) + " or password is incorrect."
}

// lookupKind is one lookup of an identifier: a kind and the normalised
// key the store looks it up by.
type lookupKind struct{ kind, key string }

// lookups are the lookups of raw, in order (see SignInWith). The first one's
// key names an unknown identifier in the throttle's counts, so
// "Alice@Example.com" and "alice@example.com" share a count.
func (w SignInWith) lookups(raw string) []lookupKind {
	k := w.kinds()
	var out []lookupKind
	if k.has(IdentifyByEmail) && (strings.Contains(raw, "@") || len(k) == 1) {
		out = append(out, lookupKind{IdentifyByEmail, storage.EmailKey(raw)})
	}
	if p := storage.PhoneKey(raw); k.has(IdentifyByPhone) && (p != "" || len(k) == 1) {
		out = append(out, lookupKind{IdentifyByPhone, p})
	}
	if k.has(IdentifyByUsername) {
		out = append(out, lookupKind{IdentifyByUsername, storage.UsernameKey(raw)})
	}
	if len(out) == 0 { // "alice" where only emails and phones sign in: nobody, counted by its name
		out = append(out, lookupKind{IdentifyByUsername, storage.UsernameKey(raw)})
	}
	return out
}

// findAccount returns the account an identifier names under the
// deployment's setting, or nil and the key that names the identifier for
// the throttle. Every door's
// password step comes through here (passwordGuess), and so does the
// passwordless start.
func (f *Flow) findAccount(ctx context.Context, raw string) (*storage.User, string, error) {
	ls := f.signInWith.lookups(raw)
	for _, l := range ls {
		if l.key == "" {
			continue
		}
		var u *storage.User
		var err error
		switch l.kind { // each store lookup normalises raw as l.key did
		case IdentifyByEmail:
			u, err = f.db.GetUserByEmail(ctx, raw)
		case IdentifyByPhone:
			u, err = f.db.GetUserByPhone(ctx, raw)
		case IdentifyByUsername:
			if f.signInWith.kinds().has(IdentifyByUsername) {
				u, err = f.db.GetUserByUsername(ctx, raw)
			}
		}
		switch {
		case err == nil && u != nil:
			return u, "", nil
		case err != nil && !errors.Is(err, storage.ErrNotFound):
			return nil, "", internal(err)
		}
	}
	if key := ls[0].key; key != "" {
		return nil, key, nil
	}
	return nil, storage.UsernameKey(raw), nil // "alice" where only phones sign in: counted by its name
}
