package account

import (
	"context"
	"errors"
	"strings"

	"github.com/stile-id/stile/storage"
)

// EventEmailChanged is a user's change of their own email address (README,
// "Audit trail").
const EventEmailChanged = "user.email_changed"

// CheckEmail says what is wrong with an email address a user gives, if
// anything: it must be one bare address.
func CheckEmail(email string) error {
	if strings.TrimSpace(email) == "" {
		return invalid("email", "give an email address")
	}
	return checkEmail(email)
}

// EmailFree reports whether no account but id's has the address (compared
// ignoring case).
func (s *Service) EmailFree(ctx context.Context, id, email string) (bool, error) {
	u, err := s.ByEmail(ctx, email)
	switch {
	case errors.Is(err, ErrNotFound):
		return true, nil
	case err != nil:
		return false, err
	}
	return u.ID == id, nil
}

// ChangeEmail gives the user the new address they proved they receive
// mail at, and tells the old address. Sessions stay: the change was
// proven with a second factor and a code sent to the new address.
func (s *Service) ChangeEmail(ctx context.Context, a Actor, id, email string) (*storage.User, error) {
	var old string
	err := CheckEmail(email)
	var u *storage.User
	if err == nil {
		u, err = s.update(ctx, id, func(u *storage.User) error { old, u.Email = u.Email, email; return nil }, 0)
	}
	if err == nil && old != "" && !strings.EqualFold(old, email) {
		was := *u
		was.Email = old
		s.notify(ctx, &was, "Your email address was changed", "The email address of your account "+u.Username+
			" was just changed; mail about it no longer comes here. If it was not you, contact your administrator at once.")
	}
	if err == nil {
		s.notify(ctx, u, "Your email address was changed", "This is now the email address of your account "+u.Username+".")
	}
	s.audit(ctx, a, EventEmailChanged, id, nil, err)
	return u, err
}
