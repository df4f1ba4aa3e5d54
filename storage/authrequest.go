package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// AuthRequest is an OpenID authorization request and the outcome of the
// login that answers it.
type AuthRequest struct {
	ID                  string        `db:"id"`
	ClientID            string        `db:"client_id"`
	RedirectURI         string        `db:"redirect_uri"`
	Scopes              Strings       `db:"scopes"`
	State               string        `db:"state"`
	Nonce               string        `db:"nonce"`
	ResponseType        string        `db:"response_type"`
	ResponseMode        string        `db:"response_mode"`
	CodeChallenge       string        `db:"code_challenge"`
	CodeChallengeMethod string        `db:"code_challenge_method"`
	Prompt              Strings       `db:"prompt"`
	MaxAge              sql.NullInt64 `db:"max_age"` // seconds; absent when the client sent none
	LoginHint           string        `db:"login_hint"`
	UILocales           string        `db:"ui_locales"`
	ACRValues           string        `db:"acr_values"`
	HintSubject         string        `db:"hint_subject"`
	BindingHash         []byte        `db:"binding_hash"`
	UserID              NullString    `db:"user_id"`
	SessionID           NullString    `db:"session_id"`      // the SSO session that answered it
	UserinfoClaims      Strings       `db:"userinfo_claims"` // claims asked for by name for userinfo
	IDTokenClaims       Strings       `db:"id_token_claims"` // claims asked for by name for the ID token
	AuthTime            sql.NullTime  `db:"auth_time"`
	AMR                 Strings       `db:"amr"`
	Done                bool          `db:"done"`
	ErrorCode           string        `db:"error_code"`
	CallbackAt          sql.NullTime  `db:"callback_at"`
	CodeHash            []byte        `db:"code_hash"`
	CodeExpiresAt       sql.NullTime  `db:"code_expires_at"`
	CodeRedeemedAt      sql.NullTime  `db:"code_redeemed_at"`
	CreatedAt           time.Time     `db:"created_at"`
	ExpiresAt           time.Time     `db:"expires_at"` // the login must finish before this
}

// NullString is a string column that may be NULL; NULL reads as "".
type NullString = sql.NullString

const authRequestColumns = `id, client_id, redirect_uri, scopes, state, nonce, response_type, response_mode,
	code_challenge, code_challenge_method, prompt, max_age, login_hint, ui_locales, acr_values, hint_subject,
	binding_hash, user_id, auth_time, amr, done, error_code, callback_at, code_hash, code_expires_at,
	code_redeemed_at, created_at, expires_at, session_id, userinfo_claims, id_token_claims`

// CreateAuthRequest stores a new authorization request. The caller sets the
// ID (unguessable) and ExpiresAt.
func (d *DB) CreateAuthRequest(ctx context.Context, a *AuthRequest) error {
	a.CreatedAt = d.Now()
	if a.Scopes == nil {
		a.Scopes = Strings{}
	}
	if a.Prompt == nil {
		a.Prompt = Strings{}
	}
	if a.AMR == nil {
		a.AMR = Strings{}
	}
	const q = `INSERT INTO auth_requests (id, client_id, redirect_uri, scopes, state, nonce, response_type, response_mode,
		code_challenge, code_challenge_method, prompt, max_age, login_hint, ui_locales, acr_values, hint_subject,
		amr, created_at, expires_at, userinfo_claims, id_token_claims)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	_, err := d.exec(ctx, d.w, q, a.ID, a.ClientID, a.RedirectURI, a.Scopes, a.State, a.Nonce, a.ResponseType,
		a.ResponseMode, a.CodeChallenge, a.CodeChallengeMethod, a.Prompt, a.MaxAge, a.LoginHint, a.UILocales,
		a.ACRValues, a.HintSubject, a.AMR, a.CreatedAt, a.ExpiresAt.UTC(), a.UserinfoClaims, a.IDTokenClaims)
	if err != nil {
		return fmt.Errorf("create auth request: %w", err)
	}
	return nil
}

// GetAuthRequest returns the authorization request with this ID, expired
// or not; callers decide what expiry means for them.
func (d *DB) GetAuthRequest(ctx context.Context, id string) (*AuthRequest, error) {
	var a AuthRequest
	if err := d.get(ctx, d.r, &a, `SELECT `+authRequestColumns+` FROM auth_requests WHERE id = ?`, id); err != nil {
		return nil, fmt.Errorf("get auth request: %w", err)
	}
	return &a, nil
}

// BindAuthRequest ties the request to a browser the first time it is called
// and returns the binding now in force. The caller compares it with its own:
// a request bound to another browser must not be continued.
func (d *DB) BindAuthRequest(ctx context.Context, id string, bindingHash []byte) ([]byte, error) {
	if _, err := d.exec(ctx, d.w, `UPDATE auth_requests SET binding_hash = ? WHERE id = ? AND binding_hash IS NULL`, bindingHash, id); err != nil {
		return nil, fmt.Errorf("bind auth request: %w", err)
	}
	var bound []byte
	if err := d.get(ctx, d.r, &bound, `SELECT binding_hash FROM auth_requests WHERE id = ?`, id); err != nil {
		return nil, fmt.Errorf("bind auth request: %w", err)
	}
	return bound, nil
}

// CompleteAuthRequest records who signed in, when and how, and under which
// SSO session. It fails with ErrNotFound unless the request is still open
// (not done, not failed).
func (d *DB) CompleteAuthRequest(ctx context.Context, id string, s *Session) error {
	const q = `UPDATE auth_requests SET user_id = ?, auth_time = ?, amr = ?, session_id = ?, done = TRUE
		WHERE id = ? AND done = FALSE AND error_code = '' AND callback_at IS NULL`
	n, err := d.exec(ctx, d.w, q, s.UserID, s.AuthTime.UTC(), s.AMR, s.ID, id)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("complete auth request: %w", err)
	}
	return nil
}

// FailAuthRequest ends an open request with an OAuth error code (such as
// login_required) that the callback will send to the client.
func (d *DB) FailAuthRequest(ctx context.Context, id, errorCode string) error {
	const q = `UPDATE auth_requests SET error_code = ? WHERE id = ? AND done = FALSE AND error_code = '' AND callback_at IS NULL`
	n, err := d.exec(ctx, d.w, q, errorCode, id)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("fail auth request: %w", err)
	}
	return nil
}

// ClaimCallback marks the request's callback as answered. Only the first
// call for a finished request succeeds; any later one gets ErrNotFound.
func (d *DB) ClaimCallback(ctx context.Context, id string) error {
	const q = `UPDATE auth_requests SET callback_at = ? WHERE id = ? AND callback_at IS NULL AND (done = TRUE OR error_code <> '')`
	n, err := d.exec(ctx, d.w, q, d.Now(), id)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("claim callback: %w", err)
	}
	return nil
}

// SaveCode stores the hash of the authorization code issued for a request.
func (d *DB) SaveCode(ctx context.Context, id string, codeHash []byte, expiresAt time.Time) error {
	const q = `UPDATE auth_requests SET code_hash = ?, code_expires_at = ? WHERE id = ? AND done = TRUE AND code_hash IS NULL`
	n, err := d.exec(ctx, d.w, q, codeHash, expiresAt.UTC(), id)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("save code: %w", err)
	}
	return nil
}

// ErrCodeReused reports a second redemption of an authorization code.
var ErrCodeReused = errors.New("authorization code already redeemed")

// RedeemCode marks the code as used and returns its request. The update is
// a single statement, so of many concurrent redemptions exactly one wins.
// An unknown or expired code is ErrNotFound; a code that was already
// redeemed is ErrCodeReused, and the request is returned with it so the
// caller can revoke what the first redemption issued.
func (d *DB) RedeemCode(ctx context.Context, codeHash []byte) (*AuthRequest, error) {
	now := d.Now()
	n, err := d.exec(ctx, d.w, `UPDATE auth_requests SET code_redeemed_at = ?
		WHERE code_hash = ? AND code_redeemed_at IS NULL AND code_expires_at > ?`, now, codeHash, now)
	if err != nil {
		return nil, fmt.Errorf("redeem code: %w", err)
	}
	var a AuthRequest
	if err := d.get(ctx, d.r, &a, `SELECT `+authRequestColumns+` FROM auth_requests WHERE code_hash = ?`, codeHash); err != nil {
		return nil, fmt.Errorf("redeem code: %w", err)
	}
	switch {
	case n == 1:
		return &a, nil
	case a.CodeRedeemedAt.Valid:
		return &a, ErrCodeReused
	default:
		return nil, fmt.Errorf("redeem code: expired: %w", ErrNotFound)
	}
}
