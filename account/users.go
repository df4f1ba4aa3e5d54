package account

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/stile-id/stile/internal/passhash"
	"github.com/stile-id/stile/storage"
)

// NewUser is what a new account starts with.
type NewUser struct {
	Username, Email, Phone string
	Roles                  []string
	Attributes             storage.Attributes
	// Password is checked against the policy and hashed. PasswordHash is
	// one already made (the CLI hashes what it reads). With neither, the
	// user gets an enrolment link on which they choose a password.
	Password     string
	PasswordHash string
	Disabled     bool
	// SkipEnrollLink makes no enrolment link for a user without a
	// password (the CLI, which has its own command for links).
	SkipEnrollLink bool
	// TOTPSecret (base32) is an authenticator the new user confirmed
	// already, with TOTPStep, the confirming code's step, spent: a
	// self-service sign-up sets one up before the account exists.
	TOTPSecret string
	TOTPStep   int64
	// Via names the door that creates the account in the audit event
	// ("signup"); empty for the operator's doors.
	Via string
}

// Created is a new account, with its enrolment link when it has no
// password yet.
type Created struct {
	User          *storage.User
	EnrollURL     string
	EnrollExpires time.Time
}

// Create makes a new account.
func (s *Service) Create(ctx context.Context, a Actor, n NewUser) (*Created, error) {
	c, err := s.create(ctx, n)
	id := ""
	if c != nil {
		id = c.User.ID
	}
	detail := storage.Attributes{"roles": n.Roles, "password": n.Password != "" || n.PasswordHash != ""}
	if n.Via != "" {
		detail["via"], detail["totp"] = n.Via, n.TOTPSecret != ""
	}
	s.audit(ctx, a, "user.created", id, detail, err)
	return c, err
}

func (s *Service) create(ctx context.Context, n NewUser) (*Created, error) {
	if n.Password != "" && n.PasswordHash != "" {
		return nil, invalid("password", "give a password or a hash, not both")
	}
	if err := checkHash(n.PasswordHash); err != nil {
		return nil, err
	}
	if err := checkEmail(n.Email); err != nil {
		return nil, err
	}
	u := &storage.User{Username: n.Username, Email: n.Email, Phone: n.Phone, Roles: uniqueRoles(n.Roles),
		Attributes: n.Attributes, Disabled: n.Disabled, PasswordHash: n.PasswordHash}
	if n.Password != "" {
		hash, err := s.hash(n.Password)
		if err != nil {
			return nil, err
		}
		u.PasswordHash = hash
	}
	if err := s.db.CreateUser(ctx, u); err != nil {
		return nil, storeError(err)
	}
	if n.TOTPSecret != "" {
		if err := s.adoptNew(ctx, u, n.TOTPSecret, n.TOTPStep); err != nil {
			return nil, err
		}
	}
	c := &Created{User: u}
	if u.PasswordHash == "" && !u.Disabled && !n.SkipEnrollLink {
		var err error
		c.EnrollURL, c.EnrollExpires, err = NewEnrollmentLink(ctx, s.db, s.c.Issuer, u.ID, DefaultEnrollmentLinkTTL, s.now())
		if err != nil {
			return c, fmt.Errorf("enrolment link for the new user %s: %w", u.ID, err)
		}
	}
	return c, nil
}

// adoptNew gives a user just created the authenticator they confirmed,
// its confirming step spent. Should that fail, the account goes again: a
// sign-up never leaves an account without the factor it set up.
func (s *Service) adoptNew(ctx context.Context, u *storage.User, secret string, step int64) error {
	err := SetTOTPSecret(ctx, s.db, s.c.Sealer, u.ID, secret)
	if err == nil {
		_, err = s.db.AcceptTOTPStep(ctx, u.ID, step)
	}
	if err == nil {
		return nil
	}
	if derr := s.db.DeleteUser(ctx, u.ID); derr != nil {
		return fmt.Errorf("new user %s: authenticator not stored (%w), and the account not removed: %w", u.ID, err, derr)
	}
	return fmt.Errorf("new user %s: authenticator not stored, account removed: %w", u.ID, err)
}

// hash checks a new password against the policy and hashes it.
func (s *Service) hash(password string) (string, error) {
	if err := CheckPasswordPolicy(password); err != nil {
		return "", invalid("password", "%s", err.Error())
	}
	h, err := s.c.Hasher.Hash(password)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// checkHash accepts "" or a hash stile can verify within its work bounds
// (internal/passhash): anything else could never be signed in with, or
// would make each guess against it expensive.
func checkHash(h string) error {
	if h == "" {
		return nil
	}
	if _, err := passhash.Scheme(h); err != nil {
		return invalid("password_hash", "%s", err.Error())
	}
	return nil
}

// checkEmail accepts "" (no address) or one bare address.
func checkEmail(e string) error {
	e = strings.TrimSpace(e)
	if e == "" {
		return nil
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || len(e) > 254 {
		return invalid("email", "%q is not an email address like name@example.com", e)
	}
	return nil
}

// Get returns the user with this uid.
func (s *Service) Get(ctx context.Context, id string) (*storage.User, error) {
	if uuid.Validate(id) != nil {
		return nil, fmt.Errorf("%w: no user %q", ErrNotFound, id)
	}
	u, err := s.db.GetUser(ctx, id)
	return u, storeError(err)
}

// ByUsername returns the user with this username, ignoring letter case.
func (s *Service) ByUsername(ctx context.Context, name string) (*storage.User, error) {
	u, err := s.db.GetUserByUsername(ctx, name)
	return u, storeError(err)
}

// ByEmail returns the user with this email address, ignoring letter case.
func (s *Service) ByEmail(ctx context.Context, email string) (*storage.User, error) {
	u, err := s.db.GetUserByEmail(ctx, email)
	return u, storeError(err)
}

// Find looks a user up by username, or by uid: how the CLI names users.
func (s *Service) Find(ctx context.Context, ref string) (*storage.User, error) {
	u, err := s.ByUsername(ctx, ref)
	if errors.Is(err, ErrNotFound) && uuid.Validate(ref) == nil {
		u, err = s.Get(ctx, ref)
	}
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: no user %q", ErrNotFound, ref)
	}
	return u, err
}

// Filter selects users for Search; zero fields select everyone.
type Filter struct {
	UsernamePrefix, EmailPrefix, Role string
	Attribute                         string // key=value
	Disabled                          *bool
	Cursor                            string // from the previous Page's Next
	Limit                             int    // 1 to MaxPageSize; 0 means DefaultPageSize
}

// Page sizes of Search.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// Page is one page of users; Next is "" on the last.
type Page struct {
	Users []storage.User
	Next  string
}

// Search returns a page of the users f selects, by username. Walking the
// pages sees every user that exists for the whole walk exactly once.
func (s *Service) Search(ctx context.Context, f Filter) (*Page, error) {
	sf := storage.UserFilter{UsernamePrefix: f.UsernamePrefix, EmailPrefix: f.EmailPrefix, Role: f.Role,
		Disabled: f.Disabled, Limit: f.Limit}
	switch {
	case f.Limit == 0:
		sf.Limit = DefaultPageSize
	case f.Limit < 1 || f.Limit > MaxPageSize:
		return nil, invalid("limit", "use 1 to %d", MaxPageSize)
	}
	if f.Attribute != "" {
		k, v, ok := strings.Cut(f.Attribute, "=")
		if !ok || k == "" {
			return nil, invalid("attribute", "use key=value")
		}
		sf.AttrKey, sf.AttrValue = k, v
	}
	if f.Cursor != "" {
		after, err := base64.RawURLEncoding.DecodeString(f.Cursor)
		if err != nil || len(after) == 0 {
			return nil, invalid("cursor", "not a cursor this API gave out")
		}
		sf.After = string(after)
	}
	sf.Limit++ // one more tells whether there is a next page
	users, err := s.db.SearchUsers(ctx, sf)
	if err != nil {
		return nil, err
	}
	p := &Page{Users: users}
	if len(users) == sf.Limit {
		p.Users = users[:len(users)-1]
		last := p.Users[len(p.Users)-1]
		p.Next = base64.RawURLEncoding.EncodeToString([]byte(storage.UsernameKey(last.Username)))
	}
	if p.Users == nil {
		p.Users = []storage.User{}
	}
	return p, nil
}

// Change is a change to a user's profile; nil or empty fields leave what
// they name as it is.
type Change struct {
	Username, Email, Phone, Preferred *string
	Roles                             *[]string // replaces the roles
	AddRoles, RemoveRoles             []string
	Attributes                        *storage.Attributes // replaces the attributes
	AttributesPatch                   json.RawMessage     // an RFC 7396 merge patch of the attributes
	RemoveAttributes                  []string
	OTPExempt                         *bool
	// IfVersion, when not 0, makes the change conditional: ErrStale unless
	// the user's version is still this one (the API's If-Match).
	IfVersion int64
}

// Update changes a user's profile. A change of roles revokes the user's
// tokens (their sessions stay, so the next sign-in is silent and its
// tokens carry the new roles).
func (s *Service) Update(ctx context.Context, a Actor, id string, ch Change) (*storage.User, error) {
	var before storage.Strings
	u, err := s.update(ctx, id, func(u *storage.User) error {
		before = slices.Clone(u.Roles)
		return ch.apply(u)
	}, ch.IfVersion)
	rolesChanged := err == nil && !slices.Equal(before, u.Roles)
	if rolesChanged {
		err = s.db.RevokeUserTokens(ctx, id)
	}
	s.audit(ctx, a, "user.updated", id, ch.fields(rolesChanged), err)
	if ch.OTPExempt != nil && err == nil {
		s.log.Warn("second-factor exemption changed", "user", id, "exempt", *ch.OTPExempt)
	}
	return u, err
}

// update applies fn to the stored user in one transaction, if the version
// is still ifVersion (unless 0).
func (s *Service) update(ctx context.Context, id string, fn func(*storage.User) error, ifVersion int64) (*storage.User, error) {
	if uuid.Validate(id) != nil {
		return nil, fmt.Errorf("%w: no user %q", ErrNotFound, id)
	}
	u, err := s.db.UpdateUser(ctx, id, func(u *storage.User) error {
		if ifVersion != 0 && u.Version != ifVersion {
			return fmt.Errorf("%w: the user is at version %d, not %d", ErrStale, u.Version, ifVersion)
		}
		return fn(u)
	})
	return u, storeError(err)
}

func (ch *Change) apply(u *storage.User) error {
	for _, f := range []struct {
		p   *string
		dst *string
	}{{ch.Username, &u.Username}, {ch.Email, &u.Email}, {ch.Phone, &u.Phone}, {ch.Preferred, &u.Preferred}} {
		if f.p != nil {
			*f.dst = *f.p
		}
	}
	u.Preferred = strings.ToUpper(u.Preferred)
	if err := checkEmail(u.Email); err != nil {
		return err
	}
	if ch.OTPExempt != nil {
		u.OTPExempt = *ch.OTPExempt
	}
	if ch.Roles != nil {
		u.Roles = storage.Strings(slices.Clone(*ch.Roles))
	}
	for _, r := range ch.AddRoles {
		if !u.Roles.Contains(r) {
			u.Roles = append(u.Roles, r)
		}
	}
	u.Roles = uniqueRoles(slices.DeleteFunc(u.Roles, func(r string) bool { return slices.Contains(ch.RemoveRoles, r) }))
	if ch.Attributes != nil {
		u.Attributes = storage.Attributes{}
		for k, v := range *ch.Attributes {
			u.Attributes[k] = v
		}
	}
	if u.Attributes == nil {
		u.Attributes = storage.Attributes{}
	}
	if len(ch.AttributesPatch) > 0 {
		var patch any
		if err := json.Unmarshal(ch.AttributesPatch, &patch); err != nil {
			return invalid("attributes", "not JSON: %v", err)
		}
		merged, ok := mergePatch(map[string]any(u.Attributes), patch).(map[string]any)
		if !ok {
			return invalid("attributes", "must be a JSON object")
		}
		u.Attributes = merged
	}
	for _, k := range ch.RemoveAttributes {
		delete(u.Attributes, k)
	}
	return nil
}

// uniqueRoles is roles without repeats, in their first order: a role is
// held or not.
func uniqueRoles(roles []string) storage.Strings {
	out := storage.Strings{}
	for _, r := range roles {
		if !out.Contains(r) {
			out = append(out, r)
		}
	}
	return out
}

// fields names what a change touched, for the audit trail: names only,
// never values.
func (ch *Change) fields(rolesChanged bool) storage.Attributes {
	var f []string
	for name, set := range map[string]bool{"username": ch.Username != nil, "email": ch.Email != nil,
		"phone": ch.Phone != nil, "preferred_method": ch.Preferred != nil, "otp_exempt": ch.OTPExempt != nil,
		"attributes": ch.Attributes != nil || len(ch.AttributesPatch) > 0 || len(ch.RemoveAttributes) > 0,
		"roles":      ch.Roles != nil || len(ch.AddRoles) > 0 || len(ch.RemoveRoles) > 0} {
		if set {
			f = append(f, name)
		}
	}
	slices.Sort(f)
	return storage.Attributes{"fields": f, "roles_changed": rolesChanged}
}

// mergePatch applies an RFC 7396 JSON merge patch to target: an object
// patch merges member by member, null deletes, anything else replaces.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	out := make(map[string]any, len(t))
	for k, v := range t {
		out[k] = v
	}
	for k, v := range p {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = mergePatch(out[k], v)
		}
	}
	return out
}

// SetPassword gives the user a new password (policy-checked, hashed),
// ends their sessions and tokens, and tells them.
func (s *Service) SetPassword(ctx context.Context, a Actor, id, password string) error {
	hash, err := s.hash(password)
	return s.setHash(ctx, a, id, hash, err)
}

// SetPasswordHash is SetPassword with a hash made elsewhere (another
// system's, within passhash's bounds).
func (s *Service) SetPasswordHash(ctx context.Context, a Actor, id, hash string) error {
	return s.setHash(ctx, a, id, hash, checkHash(hash))
}

// setHash stores a password hash unless an earlier check failed (err).
func (s *Service) setHash(ctx context.Context, a Actor, id, hash string, err error) error {
	var u *storage.User
	if err == nil {
		u, err = s.update(ctx, id, func(u *storage.User) error { u.PasswordHash = hash; return nil }, 0)
	}
	if err == nil {
		err = s.endAll(ctx, u, "Your password was changed",
			"The password of your account "+u.Username+" was changed, and every session signed out. "+
				"If this was not you, contact your administrator.")
	}
	s.audit(ctx, a, "user.password_set", id, nil, err)
	return err
}

// endAll ends everything issued to the user and, with a subject, notifies
// them.
func (s *Service) endAll(ctx context.Context, u *storage.User, subject, text string) error {
	if err := s.db.EndUserSessions(ctx, u.ID); err != nil {
		return err
	}
	if subject != "" {
		s.notify(ctx, u, subject, text)
	}
	return nil
}

// Disable stops a user from signing in and ends their sessions and tokens.
func (s *Service) Disable(ctx context.Context, a Actor, id string) (*storage.User, error) {
	u, err := s.update(ctx, id, func(u *storage.User) error { u.Disabled = true; return nil }, 0)
	if err == nil {
		err = s.endAll(ctx, u, "", "")
	}
	s.audit(ctx, a, "user.disabled", id, nil, err)
	return u, err
}

// Enable lets a disabled user sign in again.
func (s *Service) Enable(ctx context.Context, a Actor, id string) (*storage.User, error) {
	u, err := s.update(ctx, id, func(u *storage.User) error { u.Disabled = false; return nil }, 0)
	s.audit(ctx, a, "user.enabled", id, nil, err)
	return u, err
}

// Delete deletes a user and everything of theirs; the audit trail keeps
// its events about them.
func (s *Service) Delete(ctx context.Context, a Actor, id string) error {
	err := fmt.Errorf("%w: no user %q", ErrNotFound, id)
	if uuid.Validate(id) == nil {
		err = storeError(s.db.DeleteUser(ctx, id))
	}
	s.audit(ctx, a, "user.deleted", id, nil, err)
	return err
}
