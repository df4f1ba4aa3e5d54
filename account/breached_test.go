package account_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestCommonPasswords: the embedded list is the published one (its size
// and some of its best-known entries), a password on it is refused in any
// letter case with a message that says why, and passwords not on it pass
// (the positive control beside each refusal).
func TestCommonPasswords(t *testing.T) {
	if n := account.CommonPasswordCount(); n != 17950 {
		t.Fatalf("the embedded list holds %d passwords, want the 17,950 of 8+ characters", n)
	}
	for _, pw := range []string{"password", "Password1", "PASSWORD1", "12345678", "qwertyuiop", "iloveyou", "1qaz2wsx", "trustno1"} {
		err := account.CheckPasswordPolicy(pw)
		if err == nil || !strings.Contains(err.Error(), "most common passwords") {
			t.Errorf("CheckPasswordPolicy(%q) = %v, want the common-password refusal", pw, err)
		}
	}
	for _, pw := range []string{"correct horse battery", "a passphrase nobody guesses", "eight8x8", "Tr0ub4dour&3x"} {
		if err := account.CheckPasswordPolicy(pw); err != nil {
			t.Errorf("CheckPasswordPolicy(%q) = %v, want ok", pw, err)
		}
	}
	// Short ones are refused by the length rule, which says so.
	if err := account.CheckPasswordPolicy("123456"); err == nil || !strings.Contains(err.Error(), "at least 8") {
		t.Errorf("a short common password: %v", err)
	}
}

// TestCommonPasswordOnEveryDoor: the account service refuses a common
// password where it creates a user and where it sets one, as an invalid
// password field; a strong one passes.
func TestCommonPasswordOnEveryDoor(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db := storagetest.Open(t, d.URL(t))
			testCommonPasswordOnEveryDoor(t, account.New(account.Config{DB: db, Hasher: tagHasher{}, Sealer: sealer{}}))
		})
	}
}

func testCommonPasswordOnEveryDoor(t *testing.T, s *account.Service) {
	_, err := s.Create(ctx, account.Actor{Operator: "test"}, account.NewUser{Username: "carol", Password: "iloveyou1"})
	var fe *account.FieldError
	if !errors.As(err, &fe) || fe.Field != "password" || !errors.Is(err, account.ErrInvalid) {
		t.Fatalf("create with a common password: %v", err)
	}
	c, err := s.Create(ctx, account.Actor{Operator: "test"}, account.NewUser{Username: "carol", Password: "carol's own long phrase"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetPassword(ctx, account.Actor{Operator: "test"}, c.User.ID, "football1"); !errors.Is(err, account.ErrInvalid) {
		t.Fatalf("set a common password: %v", err)
	}
	if err := s.SetPassword(ctx, account.Actor{Operator: "test"}, c.User.ID, "another phrase of carol's"); err != nil {
		t.Fatalf("set a strong password: %v", err)
	}
}
