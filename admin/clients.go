package admin

import (
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/stile-id/stile/storage"
)

// Client is a registered client as the API shows it: its metadata, never
// its secret's digest nor its API key.
type Client struct {
	*storage.Client // every secret field is json:"-"
	// HasSecret and HasAPIKey say whether a secret and a direct-mode API
	// key are set, without showing either.
	HasSecret bool `json:"has_secret"`
	HasAPIKey bool `json:"has_api_key"`
}

func clientOf(c *storage.Client) Client {
	cp := *c
	for _, l := range []*storage.Strings{&cp.GrantTypes, &cp.RedirectURIs, &cp.PostLogoutRedirectURIs, &cp.WebOrigins,
		&cp.Audiences, &cp.AllowedScopes, &cp.SignupRoles} {
		if *l == nil {
			*l = storage.Strings{}
		}
	}
	if cp.SignupAttributes == nil {
		cp.SignupAttributes = storage.Attributes{}
	}
	return Client{Client: &cp, HasSecret: len(c.SecretHash) > 0, HasAPIKey: c.APIKeyID.Valid}
}

func (h *Handler) listClients(w http.ResponseWriter, r *http.Request, _ *Caller) error {
	if _, err := queryParams(r); err != nil {
		return err
	}
	cs, err := h.db.ListClients(r.Context())
	if err != nil {
		return err
	}
	out := struct {
		Clients []Client `json:"clients"`
	}{Clients: make([]Client, 0, len(cs))}
	for i := range cs {
		out.Clients = append(out.Clients, clientOf(&cs[i]))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (h *Handler) getClient(w http.ResponseWriter, r *http.Request, _ *Caller) error {
	c, err := h.db.GetClient(r.Context(), mux.Vars(r)["id"])
	if errors.Is(err, storage.ErrNotFound) {
		return errNotFound
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, clientOf(c))
}
