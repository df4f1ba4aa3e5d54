package main

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// accountRun is what testdata/interop/account-page.mjs saw.
type accountRun struct {
	SignIn, OtherSignIn, OldPassword, NewPassword          struct{ At, Text string }
	First, WrongCode, MissingCode, Removed, EmailStarted   accountAnswer
	EndOthers, OtherAfter, WrongCurrent, PasswordWrongCode accountAnswer
	PasswordChanged                                        accountAnswer
	CSP, CodeSent, ConsentAt, ConsentWithdrawn             string
	Recovery                                               struct {
		Status, Count int
		Left          string
	}
	Scan struct {
		Status int
		QR     bool
	}
	Added                                                    struct{ At, Text string }
	EmailChanged                                             struct{ Text, Shown string }
	OtherBefore, SessionsListed, CurrentMarked, SessionsLeft int
	ConsentListed                                            bool
	Forged, AfterForge, AfterPassword                        int
	ScriptErrors                                             []string
}

type accountAnswer struct {
	Status int
	Text   string
}

// TestAccountPageBrowser performs every action of the account page in
// Debian's headless Chromium (playwright-core), once on each database;
// TestAccountPage covers the same actions, and their refusals in detail,
// over HTTP. The application
// and the script's helper are on another site (127.0.0.1) than stile
// (localhost), so the browser's cross-site rules apply as in production.
func TestAccountPageBrowser(t *testing.T) {
	chromium := needChromium(t)
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) { testAccountPageBrowser(t, chromium, d.URL(t)) })
	}
}

func testAccountPageBrowser(t *testing.T, chromium, dbURL string) {
	mb, gw := newMailbox(t), newSMSGateway(t)
	s := launch(t, dbURL, launchOptions{host: "localhost", app: []func(*appConfig){delivery(t, mb, gw)}})
	alice := s.addUser(t, "alice", true)
	rps := map[string]*relyingParty{}
	mux := http.NewServeMux()
	mux.HandleFunc("/cb", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "<!doctype html><title>Back</title><main><p>Back at the application.</p></main>")
	})
	mux.HandleFunc("/start", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, rps[r.URL.Query().Get("client")].authorize().url, http.StatusSeeOther)
	})
	mux.HandleFunc("/totp", func(w http.ResponseWriter, r *http.Request) {
		s.clock.Advance(30 * time.Second)
		code, err := login.TOTPCode(r.URL.Query().Get("secret"), s.clock.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, code)
	})
	mux.HandleFunc("/mail", func(w http.ResponseWriter, r *http.Request) {
		msgs := mb.sent(r.URL.Query().Get("to"))
		for i := len(msgs) - 1; i >= 0; i-- {
			if m := sixDigits.FindStringSubmatch(msgs[i]); strings.Contains(msgs[i], r.URL.Query().Get("want")) && m != nil {
				fmt.Fprint(w, m[1])
				return
			}
		}
		http.NotFound(w, r)
	})
	mux.HandleFunc("/forge", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><title>Win a prize</title><form method="post" action="%s"><button>Claim</button></form>`,
			template.HTMLEscapeString(s.URL+r.URL.Query().Get("path")))
	})
	site := serveElsewhere(t, mux)
	for _, c := range []*storage.Client{
		{ID: "app", Name: "The App", Type: storage.ClientWeb, FirstParty: true, RedirectURIs: storage.Strings{site + "/cb"}, RequirePKCE: true},
		{ID: "partner", Name: "Partner App", Type: storage.ClientWeb, RedirectURIs: storage.Strings{site + "/cb"}, RequirePKCE: true},
	} {
		rps[c.ID] = newRP(t, s, c.ID, s.addClient(t, c), site+"/cb")
	}

	var r accountRun
	runNode(t, "account-page.mjs", &r, "STILE="+s.URL, "HELPER="+site, "USERNAME=alice", "PASSWORD="+alice.password,
		"NEW_PASSWORD=another long passphrase", "TOTP_SECRET="+alice.totpSecret, "EMAIL=alice@example.com",
		"NEW_EMAIL=alice@new.example", "CHROMIUM="+chromium)

	cb := site + "/cb?"
	checks := []struct {
		what string
		ok   bool
		got  any
	}{
		{"signed in through the application", strings.HasPrefix(r.SignIn.At, cb), r.SignIn},
		{"the page shows the authenticator", r.First.Status == 200 && strings.Contains(r.First.Text, "Authenticator app: set up"), r.First},
		{"CSP without script", strings.Contains(r.CSP, "default-src 'none'") && !strings.Contains(r.CSP, "script-src"), r.CSP},
		{"a wrong code is refused", r.WrongCode.Status == 403 && strings.Contains(r.WrongCode.Text, "not right"), r.WrongCode},
		{"a missing code is refused", r.MissingCode.Status == 400 && strings.Contains(r.MissingCode.Text, "Enter a current code"), r.MissingCode},
		{"ten recovery codes, counted", r.Recovery.Status == 200 && r.Recovery.Count == 10 && strings.Contains(r.Recovery.Left, "Recovery codes left: 10"), r.Recovery},
		{"the authenticator removed", r.Removed.Status == 200 && strings.Contains(r.Removed.Text, "Authenticator app: none") &&
			strings.Contains(r.Removed.Text, "Recovery codes left: 9"), r.Removed},
		{"a new authenticator to scan", r.Scan.Status == 200 && r.Scan.QR, r.Scan},
		{"the new authenticator set up", strings.Contains(r.Added.Text, "Your authenticator app is set up.") &&
			strings.Contains(r.Added.Text, "Authenticator app: set up"), r.Added},
		{"a step-up code sent", strings.Contains(r.CodeSent, "We sent a code to a•••@example.com"), r.CodeSent},
		{"a code sent to the new address", r.EmailStarted.Status == 200 && strings.Contains(r.EmailStarted.Text, "alice@new.example"), r.EmailStarted},
		{"the email changed", strings.Contains(r.EmailChanged.Text, "Your email address was changed.") && r.EmailChanged.Shown == "alice@new.example", r.EmailChanged},
		{"another browser signed in", strings.HasPrefix(r.OtherSignIn.At, cb) && r.OtherBefore == 200, r.OtherSignIn},
		{"two sessions, this one marked", r.SessionsListed == 2 && r.CurrentMarked == 1, []int{r.SessionsListed, r.CurrentMarked}},
		{"other sessions signed out", r.EndOthers.Status == 200 && r.SessionsLeft == 1 && r.OtherAfter.Status == 401 &&
			strings.Contains(r.OtherAfter.Text, "not signed in"), []any{r.EndOthers, r.OtherAfter}},
		{"the partner allowed, listed", strings.HasPrefix(r.ConsentAt, cb) && r.ConsentListed, r.ConsentAt},
		{"the consent withdrawn", strings.Contains(r.ConsentWithdrawn, "withdrawn") && strings.Contains(r.ConsentWithdrawn, "None yet"), r.ConsentWithdrawn},
		{"a cross-site POST refused, the session intact", r.Forged == 403 && r.AfterForge == 200, []int{r.Forged, r.AfterForge}},
		{"a wrong current password refused", r.WrongCurrent.Status == 401 && strings.Contains(r.WrongCurrent.Text, "current password is not right"), r.WrongCurrent},
		{"a wrong code with the right password refused", r.PasswordWrongCode.Status == 403, r.PasswordWrongCode},
		{"the password changed, every session ended", r.PasswordChanged.Status == 200 && strings.Contains(r.PasswordChanged.Text, "Your password was changed") &&
			r.AfterPassword == 401, []any{r.PasswordChanged, r.AfterPassword}},
		{"the old password fails", !strings.HasPrefix(r.OldPassword.At, cb) && strings.Contains(r.OldPassword.Text, "incorrect"), r.OldPassword},
		{"the new password works", strings.HasPrefix(r.NewPassword.At, cb), r.NewPassword},
		{"no script errors", len(r.ScriptErrors) == 0, r.ScriptErrors},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: got %+v", c.what, c.got)
		}
	}
	if u, _ := s.db.GetUser(context.Background(), alice.ID); u.Email != "alice@new.example" {
		t.Errorf("stored email %q", u.Email)
	}
	mb.last(t, "alice@example.com", "The email address of your account alice was just changed")
}
