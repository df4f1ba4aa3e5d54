package admin

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/storage"
)

func (h *Handler) mountUsers(s *mux.Router) {
	s.Handle("/users", h.api(h.createUser)).Methods(http.MethodPost)
	s.Handle("/users", h.api(h.searchUsers)).Methods(http.MethodGet)
	h.mountImport(s)
	// {username} and {email} may hold a '/', so these come before the
	// routes below a user's ID.
	s.Handle("/users/by-username/{username:.+}", h.api(h.userBy("username", h.accounts.ByUsername))).Methods(http.MethodGet)
	s.Handle("/users/by-email/{email:.+}", h.api(h.userBy("email", h.accounts.ByEmail))).Methods(http.MethodGet)
	s.Handle("/users/{id}", h.api(h.userBy("id", h.accounts.Get))).Methods(http.MethodGet)
	s.Handle("/users/{id}", h.api(h.patchUser)).Methods(http.MethodPatch)
	s.Handle("/users/{id}", h.api(h.putUser)).Methods(http.MethodPut)
	s.Handle("/users/{id}", h.api(h.deleteUser)).Methods(http.MethodDelete)
	s.Handle("/users/{id}/password", h.api(h.setPassword)).Methods(http.MethodPut)
	s.Handle("/users/{id}/disable", h.api(h.disableUser)).Methods(http.MethodPost)
	s.Handle("/users/{id}/enable", h.api(h.enableUser)).Methods(http.MethodPost)
}

// User is a user as the API shows it: never a password hash, and nothing
// that is not listed here (the document's schema allows no more).
type User struct {
	UID             string             `json:"uid"`
	Username        string             `json:"username"`
	Email           string             `json:"email"`
	Phone           string             `json:"phone"`
	Roles           []string           `json:"roles"`
	Attributes      storage.Attributes `json:"attributes"`
	Disabled        bool               `json:"disabled"`
	PreferredMethod string             `json:"preferred_method"`
	CreatedAt       time.Time          `json:"created_at"`
	UpdatedAt       time.Time          `json:"updated_at"`
	Version         int64              `json:"version"`
}

func userOf(u *storage.User) User {
	out := User{UID: u.ID, Username: u.Username, Email: u.Email, Phone: u.Phone, Roles: []string(u.Roles),
		Attributes: u.Attributes, Disabled: u.Disabled, PreferredMethod: u.Preferred,
		CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC(), Version: u.Version}
	if out.Roles == nil {
		out.Roles = []string{}
	}
	if out.Attributes == nil {
		out.Attributes = storage.Attributes{}
	}
	return out
}

// etag is a user's entity tag: its version, which every change bumps.
func etag(u *storage.User) string { return `"` + strconv.FormatInt(u.Version, 10) + `"` }

// writeUser answers a user with its ETag.
func writeUser(w http.ResponseWriter, status int, u *storage.User) error {
	w.Header().Set("ETag", etag(u))
	return writeJSON(w, status, userOf(u))
}

type newUserBody struct {
	Username   string             `json:"username"`
	Email      string             `json:"email"`
	Phone      string             `json:"phone"`
	Roles      []string           `json:"roles"`
	Attributes storage.Attributes `json:"attributes"`
	Password   string             `json:"password"`
	Disabled   bool               `json:"disabled"`
}

// Enrollment is a single-use link that lets a user choose a password and
// enrol a second factor.
type Enrollment struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

type createdUser struct {
	User
	Enrollment *Enrollment `json:"enrollment,omitempty"`
}

func (h *Handler) createUser(w http.ResponseWriter, r *http.Request, c *Caller) error {
	var b newUserBody
	if _, err := decodeObject(w, r, typeJSON, &b, false); err != nil {
		return err
	}
	made, err := h.accounts.Create(r.Context(), actor(r, c), account.NewUser{Username: b.Username, Email: b.Email,
		Phone: b.Phone, Roles: b.Roles, Attributes: b.Attributes, Password: b.Password, Disabled: b.Disabled})
	if err != nil {
		return err
	}
	out := createdUser{User: userOf(made.User)}
	if made.EnrollURL != "" {
		out.Enrollment = &Enrollment{URL: made.EnrollURL, ExpiresAt: made.EnrollExpires.UTC()}
	}
	w.Header().Set("Location", "/api/v1/users/"+made.User.ID)
	w.Header().Set("ETag", etag(made.User))
	return writeJSON(w, http.StatusCreated, out)
}

// userBy answers the user that find finds by the path variable v.
func (h *Handler) userBy(v string, find func(context.Context, string) (*storage.User, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ *Caller) error {
		u, err := find(r.Context(), mux.Vars(r)[v])
		if err != nil {
			return err
		}
		return writeUser(w, http.StatusOK, u)
	}
}

// searchUsers answers a page of users matching the query's filters.
func (h *Handler) searchUsers(w http.ResponseWriter, r *http.Request, _ *Caller) error {
	q, err := queryParams(r, "username_prefix", "email_prefix", "role", "attribute", "disabled", "limit", "cursor")
	if err != nil {
		return err
	}
	f := account.Filter{UsernamePrefix: q["username_prefix"], EmailPrefix: q["email_prefix"], Role: q["role"],
		Attribute: q["attribute"], Cursor: q["cursor"]}
	if a, ok := q["attribute"]; ok && !strings.Contains(a, "=") {
		return badField("attribute", "use key=value")
	}
	if d, ok := q["disabled"]; ok {
		v, err := strconv.ParseBool(d)
		if err != nil || (d != "true" && d != "false") {
			return badField("disabled", "use true or false")
		}
		f.Disabled = &v
	}
	if f.Limit, err = limitParam(q, 50, 200); err != nil {
		return err
	}
	page, err := h.accounts.Search(r.Context(), f)
	if err != nil {
		return err
	}
	out := userPage{Users: make([]User, 0, len(page.Users)), NextCursor: page.Next}
	for i := range page.Users {
		out.Users = append(out.Users, userOf(&page.Users[i]))
	}
	return writeJSON(w, http.StatusOK, out)
}

type userPage struct {
	Users      []User `json:"users"`
	NextCursor string `json:"next_cursor,omitempty"` // absent on the last page
}

// limitParam reads the limit query parameter: 1 to most, def when absent.
func limitParam(q map[string]string, def, most int) (int, error) {
	s, ok := q["limit"]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > most {
		return 0, badField("limit", "use a whole number from 1 to "+strconv.Itoa(most))
	}
	return n, nil
}

func (h *Handler) deleteUser(w http.ResponseWriter, r *http.Request, c *Caller) error {
	if err := h.accounts.Delete(r.Context(), actor(r, c), mux.Vars(r)["id"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type passwordBody struct {
	Password string `json:"password"`
}

// setPassword sets a new password; the service ends the user's sessions
// and revokes their tokens.
func (h *Handler) setPassword(w http.ResponseWriter, r *http.Request, c *Caller) error {
	var b passwordBody
	m, err := decodeObject(w, r, typeJSON, &b, false)
	if err != nil {
		return err
	}
	if _, ok := m["password"]; !ok {
		return badField("password", "required")
	}
	if err := h.accounts.SetPassword(r.Context(), actor(r, c), mux.Vars(r)["id"], b.Password); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) disableUser(w http.ResponseWriter, r *http.Request, c *Caller) error {
	u, err := h.accounts.Disable(r.Context(), actor(r, c), mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	return writeUser(w, http.StatusOK, u)
}

func (h *Handler) enableUser(w http.ResponseWriter, r *http.Request, c *Caller) error {
	u, err := h.accounts.Enable(r.Context(), actor(r, c), mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	return writeUser(w, http.StatusOK, u)
}
