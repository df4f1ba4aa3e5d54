package login_test

import (
	"testing"

	"github.com/stile-id/stile/login"
)

func TestParseSignInWith(t *testing.T) {
	for _, tc := range []struct {
		in, label, typ string
		bad            bool
	}{
		{in: "username", label: "Username", typ: "text"},
		{in: "email", label: "Email address", typ: "email"},
		{in: "phone", label: "Phone number", typ: "tel"},
		{in: " Username , EMAIL ", label: "Username or email address", typ: "text"},
		{in: "phone,username", label: "Phone number or username", typ: "text"},
		{in: "username,email,phone", label: "Username or email address or phone number", typ: "text"},
		{in: "", bad: true},
		{in: "nickname", bad: true},
		{in: "email,email", bad: true},
		{in: "username,", bad: true},
	} {
		w, err := login.ParseSignInWith(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseSignInWith(%q) = %v, want an error", tc.in, w)
			}
			continue
		}
		if err != nil || w.Label() != tc.label || w.InputType() != tc.typ {
			t.Errorf("ParseSignInWith(%q) = %v (label %q, type %q), %v; want label %q, type %q", tc.in, w, w.Label(), w.InputType(), err,
				tc.label, tc.typ)
		}
	}
	var none login.SignInWith // the zero value is usernames
	if none.String() != "username" || none.Label() != "Username" {
		t.Errorf("zero SignInWith: %q %q", none.String(), none.Label())
	}
}
