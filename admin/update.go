package admin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/storage"
)

// profileFields are what PATCH and PUT may set; every other key is refused.
var profileFields = []string{"username", "email", "phone", "preferred_method", "roles", "attributes"}

// patchUser applies an RFC 7396 merge patch: a field present replaces
// the stored one (null empties it), attributes are merged key by key
// (null deletes a key), absent fields stay as they are.
func (h *Handler) patchUser(w http.ResponseWriter, r *http.Request, c *Caller) error {
	w.Header().Set("Accept-Patch", typeMergePatch) // RFC 5789 §3.1: what a 415 should have sent
	m, err := readProfile(w, r, typeMergePatch)
	if err != nil {
		return err
	}
	ch, err := profileChange(m, false)
	if err != nil {
		return err
	}
	return h.update(w, r, c, ch)
}

// putUser replaces the profile: a field absent becomes empty.
func (h *Handler) putUser(w http.ResponseWriter, r *http.Request, c *Caller) error {
	m, err := readProfile(w, r, typeJSON)
	if err != nil {
		return err
	}
	ch, err := profileChange(m, true)
	if err != nil {
		return err
	}
	return h.update(w, r, c, ch)
}

func (h *Handler) update(w http.ResponseWriter, r *http.Request, c *Caller, ch account.Change) error {
	v, err := ifMatch(r)
	if err != nil {
		return err
	}
	ch.IfVersion = v
	u, err := h.accounts.Update(r.Context(), actor(r, c), mux.Vars(r)["id"], ch)
	if err != nil {
		return err
	}
	return writeUser(w, http.StatusOK, u)
}

// readProfile reads a JSON object of profile fields, refusing others.
func readProfile(w http.ResponseWriter, r *http.Request, want string) (map[string]json.RawMessage, error) {
	b, err := readBody(w, r, want, maxBody, false)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, badField("body", "must be one JSON object")
	}
	return m, knownFields(m, profileFields)
}

// profileChange turns profile fields into a change. With replace (PUT),
// absent fields are set empty; without (PATCH), they are left alone.
func profileChange(m map[string]json.RawMessage, replace bool) (account.Change, error) {
	var ch account.Change
	for _, f := range []struct {
		name string
		dst  **string
	}{{"username", &ch.Username}, {"email", &ch.Email}, {"phone", &ch.Phone}, {"preferred_method", &ch.Preferred}} {
		raw, ok := m[f.name]
		if !ok && !replace {
			continue
		}
		var s string
		if ok && !isNull(raw) {
			if err := json.Unmarshal(raw, &s); err != nil {
				return ch, badField(f.name, "must be a string")
			}
		}
		*f.dst = &s
	}
	if raw, ok := m["roles"]; ok || replace {
		roles := []string{}
		if ok && !isNull(raw) {
			if err := json.Unmarshal(raw, &roles); err != nil {
				return ch, badField("roles", "must be an array of strings")
			}
		}
		ch.Roles = &roles
	}
	return ch, attributesChange(&ch, m, replace)
}

// attributesChange: PUT replaces the attributes; PATCH with an object
// merges it (RFC 7396, in the service), with null empties them.
func attributesChange(ch *account.Change, m map[string]json.RawMessage, replace bool) error {
	raw, ok := m["attributes"]
	switch {
	case !ok && !replace:
		return nil
	case !ok || isNull(raw):
		ch.Attributes = &storage.Attributes{}
		return nil
	}
	var a storage.Attributes
	if err := json.Unmarshal(raw, &a); err != nil || a == nil {
		return badField("attributes", "must be a JSON object")
	}
	if replace {
		ch.Attributes = &a
	} else {
		ch.AttributesPatch = raw
	}
	return nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// ifMatch reads If-Match: 0 when absent (unconditional), else the version
// its strong ETag names. Anything else can match no version: 412.
func ifMatch(r *http.Request) (int64, error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(v, `"`), `"`), 10, 64)
	if err != nil || n <= 0 || !strings.HasPrefix(v, `"`) || !strings.HasSuffix(v, `"`) || len(v) < 3 {
		return 0, errStaleMatch
	}
	return n, nil
}
