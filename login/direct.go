package login

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/stile-id/stile/internal/clientip"
	"github.com/stile-id/stile/storage"
)

// The headless direct mode, for CMS backends that want no redirect at all:
//
//	POST /headless/authenticate {username, password, apiKey}                     → {status, message, transactionID, authType, username}
//	POST /headless/login        {username, transactionID, authType, otp, apiKey} → tokens and {uid, roles, attributes}
//
// It is a password grant plus a second factor: the backend sees its users'
// passwords, so it is for trusted backends only, off unless a confidential
// client enables it, and refused to browsers (any request with an Origin).
// The transaction belongs to the client whose apiKey opened it.
func (h *Handler) mountDirect(r *mux.Router) {
	d := r.PathPrefix("/headless").Subrouter()
	d.HandleFunc("/authenticate", h.directAuthenticate).Methods(http.MethodPost)
	d.HandleFunc("/login", h.directLogin).Methods(http.MethodPost)
	answerWrongMethods(d, h.wrongMethodJSON)
}

// DirectTokens is what the direct mode hands back after both steps.
type DirectTokens struct {
	IDToken, AccessToken, RefreshToken, TokenType string
	ExpiresIn                                     uint64
}

// TokenIssuer mints the tokens of a direct-mode sign-in; the provider does.
type TokenIssuer func(ctx context.Context, clientID, userID string, amr []string, authTime time.Time) (*DirectTokens, error)

// APIKey is a direct-mode credential: "stile_<lookup id>_<secret>". The
// lookup ID finds the client; the secret's MAC is then one constant-time
// comparison, never a scan.
const apiKeyPrefix = "stile_"

// NewAPIKey makes a key; the store keeps its ID and the MAC of the secret.
func NewAPIKey(macKey []byte) (key, id string, secretMAC []byte) {
	b := make([]byte, 8)
	rand.Read(b)
	id = hex.EncodeToString(b)
	s := make([]byte, 32)
	rand.Read(s)
	secret := base64.RawURLEncoding.EncodeToString(s)
	return apiKeyPrefix + id + "_" + secret, id, mac(macKey, "api-key", id, secret)
}

var (
	errNotEnabled = &Error{Code: CodeNotEnabled, Message: "The direct mode is not enabled."}
	errAPIKey     = &Error{Code: CodeInvalidAPIKey, Message: "The apiKey is not valid."}
	errBrowser    = &Error{Code: CodeOriginNotAllowed, Message: "The direct mode is for backends; browsers use the JSON login API."}
)

// directClient authenticates the calling backend by its apiKey: one
// lookup by the key's ID and one constant-time comparison. Only a refused
// key costs a second query, to tell "no client has the mode on" (404)
// from a wrong key (400).
func (h *Handler) directClient(r *http.Request, apiKey string) (*storage.Client, []byte, error) {
	if r.Header.Get("Origin") != "" {
		return nil, nil, errBrowser
	}
	c, id, err := h.clientByAPIKey(r.Context(), apiKey)
	if err != nil {
		return nil, nil, internal(err)
	}
	if c == nil {
		if on, err := h.flow.db.AnyHeadless(r.Context()); err != nil {
			return nil, nil, internal(err)
		} else if !on {
			return nil, nil, errNotEnabled
		}
		return nil, nil, errAPIKey
	}
	return c, mac(h.flow.keys.APIKey, "direct-binding", c.ID, id), nil
}

// clientByAPIKey returns the headless client the key belongs to and the
// key's ID, or no client for a malformed, unknown or wrong key.
func (h *Handler) clientByAPIKey(ctx context.Context, apiKey string) (*storage.Client, string, error) {
	rest, ok := strings.CutPrefix(apiKey, apiKeyPrefix)
	id, secret, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 {
		return nil, "", nil
	}
	c, err := h.flow.db.ClientByAPIKeyID(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	if !c.Headless || !hmac.Equal(c.APIKeyMAC, mac(h.flow.keys.APIKey, "api-key", id, secret)) {
		return nil, "", nil
	}
	return c, id, nil
}

// endUser reads the end user's address from X-End-User-IP (only once
// directClient has accepted the apiKey: an unauthenticated caller's header
// means nothing) and returns the request's context with that address as
// its source, so every per-address limit of the Flow counts the end user,
// not the backend. The header fails closed: present, it must be exactly
// one address — a port, a list, brackets, a zone, garbage or an empty
// value is a 400, never "no address", which would let a backend's bug (or
// an attacker who controls what it forwards) move every user into the
// backend's shared bucket or out of their own. Absent, the backend's own
// address stays the source, and all its users share its limits. It also
// returns what the log names as the caller.
func endUser(r *http.Request) (context.Context, string, error) {
	vals := r.Header.Values(endUserHeader)
	if len(vals) == 0 {
		return r.Context(), r.RemoteAddr, nil
	}
	if len(vals) > 1 {
		return nil, "", errEndUser
	}
	ip, err := clientip.ParseOne(vals[0])
	if err != nil {
		return nil, "", errEndUser
	}
	return clientip.With(r.Context(), ip), ip.String(), nil
}

const endUserHeader = "X-End-User-IP"

var errEndUser = &Error{Code: CodeInvalidRequest, Message: "X-End-User-IP must be exactly one IP address, " +
	"without a port, brackets or a zone, and not a list. Leave the header out only when the end user's address is unknown."}

func (h *Handler) directAuthenticate(w http.ResponseWriter, r *http.Request) {
	var in struct{ Username, Password, APIKey string }
	if !h.decodeJSON(w, r, &in) {
		return
	}
	c, binding, err := h.directClient(r, in.APIKey)
	if err != nil {
		h.apiError(w, r, err)
		return
	}
	ctx, remote, err := endUser(r)
	if err != nil {
		h.apiError(w, r, err)
		return
	}
	ch, user, err := h.flow.AuthenticateDirect(ctx, DirectCredentials{Client: c, Binding: binding,
		Username: in.Username, Password: in.Password, RemoteAddr: remote})
	if err != nil {
		h.apiError(w, r, err)
		return
	}
	res := challengeResponse(ch)
	writeJSON(w, http.StatusOK, struct {
		apiResponse
		Username string `json:"username"`
	}{res, user.Username})
}

// directLoginResponse is the direct mode's success: the tokens and the
// profile a CMS needs to create or update its local account.
type directLoginResponse struct {
	Status       string         `json:"status"`
	IDToken      string         `json:"id_token"`
	AccessToken  string         `json:"access_token"`
	RefreshToken string         `json:"refresh_token,omitempty"`
	TokenType    string         `json:"token_type"`
	ExpiresIn    uint64         `json:"expires_in"`
	UID          string         `json:"uid"`
	Username     string         `json:"username"`
	Roles        []string       `json:"roles"`
	Attributes   map[string]any `json:"attributes"`
}

func (h *Handler) directLogin(w http.ResponseWriter, r *http.Request) {
	var in struct{ Username, TransactionID, AuthType, OTP, APIKey string }
	if !h.decodeJSON(w, r, &in) {
		return
	}
	c, binding, err := h.directClient(r, in.APIKey)
	if err != nil {
		h.apiError(w, r, err)
		return
	}
	ctx, remote, err := endUser(r)
	if err != nil {
		h.apiError(w, r, err)
		return
	}
	if err := h.flow.checkDirectStep(ctx, in.TransactionID, binding, in.Username, in.AuthType, in.OTP); err != nil {
		h.apiError(w, r, err)
		return
	}
	v, err := h.flow.Verify(ctx, OneTimeCode{TransactionID: in.TransactionID, Binding: binding, Door: storage.DoorDirect, OTP: in.OTP,
		RemoteAddr: remote})
	if err != nil {
		h.apiError(w, r, err)
		return
	}
	if v.Enroll != nil {
		writeJSON(w, http.StatusOK, challengeResponse(&Challenge{TransactionID: in.TransactionID, Method: MethodTOTPEnroll,
			Message: "Scan the QR code with an authenticator app, then send the code it shows.", Enroll: v.Enroll}))
		return
	}
	if v.User == nil || v.Next != nil { // a browser's login; the doors keep it out
		h.apiError(w, r, internal(errors.New("direct mode: a transaction finished with a browser step")))
		return
	}
	t, err := h.flow.issueDirect(ctx, c.ID, v.User.ID, v.AMR, v.AuthTime)
	if err != nil {
		h.apiError(w, r, internal(err))
		return
	}
	writeJSON(w, http.StatusOK, directLoginResponse{Status: "SUCCESS", IDToken: t.IDToken, AccessToken: t.AccessToken,
		RefreshToken: t.RefreshToken, TokenType: t.TokenType, ExpiresIn: t.ExpiresIn, UID: v.User.ID,
		Username: v.User.Username, Roles: v.User.Roles, Attributes: v.User.Attributes})
}

// checkDirectStep checks what the backend says of the transaction against
// what the server knows: the user, and the method. authType is the
// server's to choose; a caller's other value is refused, not obeyed (a
// recovery code may always stand in).
func (f *Flow) checkDirectStep(ctx context.Context, txID string, binding []byte, username, authType_, otp string) error {
	tx, err := f.openTransaction(ctx, txID, binding, storage.DoorDirect)
	if err != nil {
		return err
	}
	u, err := f.db.GetUser(ctx, tx.UserID)
	if err != nil {
		return internal(err)
	}
	if storage.UsernameKey(username) != storage.UsernameKey(u.Username) {
		return fail(CodeInvalidRequest, "The username is not the transaction's.")
	}
	_, isRecovery := recoveryForm(otp)
	if authType_ != authType(tx) && !(authType_ == MethodRecovery && isRecovery) {
		return fail(CodeInvalidRequest, "authType "+authType_+" is not this transaction's ("+authType(tx)+").")
	}
	return nil
}
