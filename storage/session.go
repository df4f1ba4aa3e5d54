package storage

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Session is a browser's single sign-on session: who signed in, when and
// how. While it lives, a new authorization skips both steps.
type Session struct {
	ID         string       `db:"id"` // public; the ID token's sid
	CookieHash []byte       `db:"cookie_hash"`
	UserID     string       `db:"user_id"`
	AuthTime   time.Time    `db:"auth_time"`
	AMR        Strings      `db:"amr"`
	CreatedAt  time.Time    `db:"created_at"`
	LastSeenAt time.Time    `db:"last_seen_at"`
	ExpiresAt  time.Time    `db:"expires_at"` // absolute
	EndedAt    sql.NullTime `db:"ended_at"`
}

// Active reports whether the session may still be used at now, given the
// idle lifetime.
func (s *Session) Active(now time.Time, idle time.Duration) bool {
	return !s.EndedAt.Valid && now.Before(s.ExpiresAt) && now.Before(s.LastSeenAt.Add(idle))
}

const sessionColumns = `id, cookie_hash, user_id, auth_time, amr, created_at, last_seen_at, expires_at, ended_at`

// CreateSession stores a new session. The caller sets ID, CookieHash,
// UserID, AuthTime, AMR and ExpiresAt.
func (d *DB) CreateSession(ctx context.Context, s *Session) error {
	s.CreatedAt = d.Now()
	s.LastSeenAt = s.CreatedAt
	const q = `INSERT INTO sessions (` + sessionColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)`
	_, err := d.exec(ctx, d.w, q, s.ID, s.CookieHash, s.UserID, s.AuthTime.UTC(), s.AMR, s.CreatedAt, s.LastSeenAt, s.ExpiresAt.UTC())
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// SessionByCookie returns the session whose cookie MAC is hash, ended or
// not.
func (d *DB) SessionByCookie(ctx context.Context, hash []byte) (*Session, error) {
	var s Session
	if err := d.get(ctx, d.r, &s, `SELECT `+sessionColumns+` FROM sessions WHERE cookie_hash = ?`, hash); err != nil {
		return nil, fmt.Errorf("get session: %w", err)
	}
	return &s, nil
}

// GetSession returns the session with this ID.
func (d *DB) GetSession(ctx context.Context, id string) (*Session, error) {
	var s Session
	if err := d.get(ctx, d.r, &s, `SELECT `+sessionColumns+` FROM sessions WHERE id = ?`, id); err != nil {
		return nil, fmt.Errorf("get session: %w", err)
	}
	return &s, nil
}

// TouchSession records that the session was just used, which restarts its
// idle lifetime.
func (d *DB) TouchSession(ctx context.Context, id string) error {
	if _, err := d.exec(ctx, d.w, `UPDATE sessions SET last_seen_at = ? WHERE id = ? AND ended_at IS NULL`, d.Now(), id); err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// EndSession ends one session and revokes the tokens issued under it.
func (d *DB) EndSession(ctx context.Context, id string) error {
	err := d.tx(ctx, func(q queryer) error {
		now := d.Now()
		if _, err := d.exec(ctx, q, `UPDATE sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL`, now, id); err != nil {
			return err
		}
		return d.revokeTokensWhere(ctx, q, "session_id = ?", id)
	})
	if err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// EndUserSessions ends every session of a user, revokes every token issued
// to them and voids their pending password-reset links: after their
// account was disabled, their password set or their second factor reset.
func (d *DB) EndUserSessions(ctx context.Context, userID string) error {
	err := d.tx(ctx, func(q queryer) error {
		now := d.Now()
		if _, err := d.exec(ctx, q, `UPDATE sessions SET ended_at = ? WHERE user_id = ? AND ended_at IS NULL`, now, userID); err != nil {
			return err
		}
		// A pending forgot-password link would outlive what the operator
		// (or the user) just ended; a completed reset spent its link first.
		if _, err := d.exec(ctx, q, `UPDATE password_resets SET used_at = ? WHERE user_id = ? AND used_at IS NULL`, now, userID); err != nil {
			return err
		}
		return d.revokeTokensWhere(ctx, q, "user_id = ?", userID)
	})
	if err != nil {
		return fmt.Errorf("end sessions of user %s: %w", userID, err)
	}
	return nil
}

// revokeTokensWhere revokes the refresh and access tokens matching where
// (a condition on a column both tables have).
func (d *DB) revokeTokensWhere(ctx context.Context, q queryer, where string, arg any) error {
	now := d.Now()
	for _, table := range []string{"refresh_tokens", "access_tokens"} {
		stmt := `UPDATE ` + table + ` SET revoked_at = ? WHERE ` + where + ` AND revoked_at IS NULL`
		if _, err := d.exec(ctx, q, stmt, now, arg); err != nil {
			return err
		}
	}
	return nil
}

// SetHandover gives a session a one-time ticket (its MAC) that a browser
// can redeem until expiresAt to receive the session's cookie.
func (d *DB) SetHandover(ctx context.Context, id string, mac []byte, expiresAt time.Time) error {
	const q = `UPDATE sessions SET handover_mac = ?, handover_expires_at = ? WHERE id = ? AND ended_at IS NULL`
	n, err := d.exec(ctx, d.w, q, mac, expiresAt.UTC(), id)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("set session handover: %w", err)
	}
	return nil
}

// ClaimHandover redeems a ticket once: the session's cookie becomes the one
// whose MAC is cookieHash. ErrNotFound for an unknown, used or expired ticket.
func (d *DB) ClaimHandover(ctx context.Context, mac, cookieHash []byte) (*Session, error) {
	const q = `UPDATE sessions SET cookie_hash = ?, handover_mac = NULL, handover_expires_at = NULL
		WHERE handover_mac = ? AND handover_expires_at > ? AND ended_at IS NULL`
	n, err := d.exec(ctx, d.w, q, cookieHash, mac, d.Now())
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("claim session handover: %w", err)
	}
	return d.SessionByCookie(ctx, cookieHash)
}

// DropHandover burns a ticket without redeeming it — a browser other than
// the login's presented it — and ends its session, which no browser can
// now ever hold. ErrNotFound if no live session has the ticket.
func (d *DB) DropHandover(ctx context.Context, mac []byte) error {
	err := d.tx(ctx, func(q queryer) error {
		var id string
		if err := d.get(ctx, q, &id, `SELECT id FROM sessions WHERE handover_mac = ? AND ended_at IS NULL`, mac); err != nil {
			return err
		}
		const drop = `UPDATE sessions SET handover_mac = NULL, handover_expires_at = NULL, ended_at = ?
			WHERE id = ? AND handover_mac = ? AND ended_at IS NULL`
		n, err := d.exec(ctx, q, drop, d.Now(), id, mac)
		if err == nil && n == 0 {
			err = ErrNotFound // redeemed or dropped meanwhile
		}
		if err != nil {
			return err
		}
		return d.revokeTokensWhere(ctx, q, "session_id = ?", id)
	})
	if err != nil {
		return fmt.Errorf("drop session handover: %w", err)
	}
	return nil
}

// ListUserSessions returns the user's sessions that have not ended and
// have not passed their absolute lifetime, newest first. (Whether one is
// still inside its idle lifetime is Session.Active's to say.)
func (d *DB) ListUserSessions(ctx context.Context, userID string) ([]Session, error) {
	var out []Session
	q := `SELECT ` + sessionColumns + ` FROM sessions WHERE user_id = ? AND ended_at IS NULL AND expires_at > ?
		ORDER BY created_at DESC, id`
	if err := d.sel(ctx, d.r, &out, q, userID, d.Now()); err != nil {
		return nil, fmt.Errorf("list sessions of user %s: %w", userID, err)
	}
	return out, nil
}

// RevokeUserTokens revokes the user's refresh and access tokens but keeps
// their sessions: after a change to what the tokens say (roles), the next
// sign-in is silent and its tokens carry the change.
func (d *DB) RevokeUserTokens(ctx context.Context, userID string) error {
	err := d.tx(ctx, func(q queryer) error { return d.revokeTokensWhere(ctx, q, "user_id = ?", userID) })
	if err != nil {
		return fmt.Errorf("revoke tokens of user %s: %w", userID, err)
	}
	return nil
}
