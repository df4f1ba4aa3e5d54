package login

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/stile-id/stile/storage"
)

// Session lifetimes: NIST SP 800-63B AAL2 asks for re-authentication after
// 12 hours, or after 30 minutes of inactivity.
const (
	DefaultSessionIdle     = 30 * time.Minute
	DefaultSessionAbsolute = 12 * time.Hour
)

// Sessions keeps single sign-on sessions: a random value in a cookie, its
// MAC in the database. A new session, and a new cookie, is made at every
// sign-in, so a cookie planted before the sign-in is worth nothing after it.
type Sessions struct {
	db       *storage.DB
	cookie   secretCookie
	now      func() time.Time
	Idle     time.Duration
	Absolute time.Duration
	record   func(context.Context, *storage.Event) // the Flow's audit trail (NewFlow sets it); nil: none
}

// NewSessions returns the session keeper with the default lifetimes.
func NewSessions(db *storage.DB, key []byte, secure bool, now func() time.Time) *Sessions {
	return &Sessions{db: db, cookie: secretCookie{base: "stile_session", key: key, secure: secure}, now: now,
		Idle: DefaultSessionIdle, Absolute: DefaultSessionAbsolute}
}

// Current returns the request's session if it is active and its user can
// still sign in; otherwise nil.
func (s *Sessions) Current(r *http.Request) *storage.Session {
	value, ok := s.cookie.read(r)
	if !ok {
		return nil
	}
	sess, err := s.db.SessionByCookie(r.Context(), s.cookie.mac(value))
	if err != nil || !sess.Active(s.now(), s.Idle) {
		return nil
	}
	u, err := s.db.GetUser(r.Context(), sess.UserID)
	if err != nil || u.Disabled {
		return nil
	}
	return sess
}

// started is a new session and the cookie value that names it.
type started struct {
	session *storage.Session
	cookie  string
}

// start opens a session for a user who just proved every factor, ending
// the session the browser had before (replaced is its ID, or "").
func (s *Sessions) start(ctx context.Context, userID string, amr []string, replaced string) (*started, error) {
	if replaced != "" {
		if err := s.db.EndSession(ctx, replaced); err != nil {
			return nil, err
		}
	}
	value := newValue()
	now := s.now()
	sess := &storage.Session{ID: uuid.NewString(), CookieHash: s.cookie.mac(value), UserID: userID, AuthTime: now,
		AMR: storage.Strings(amr), ExpiresAt: now.Add(s.Absolute)}
	if err := s.db.CreateSession(ctx, sess); err != nil {
		return nil, err
	}
	return &started{session: sess, cookie: value}, nil
}

// setCookie gives the browser its session cookie. It lives as long as the
// session can; the idle limit is enforced on the server.
func (s *Sessions) setCookie(w http.ResponseWriter, value string) {
	s.cookie.set(w, value, int(s.Absolute/time.Second))
}

// Clear removes the session cookie from the browser.
func (s *Sessions) Clear(w http.ResponseWriter) { s.cookie.set(w, "", -1) }

// ErrNoSession means the browser has no active session.
var ErrNoSession = errors.New("no active session")

// EndCurrent ends the browser's session, if it has one, and clears its
// cookie. It returns the ended session.
func (s *Sessions) EndCurrent(w http.ResponseWriter, r *http.Request) (*storage.Session, error) {
	s.Clear(w)
	sess := s.Current(r)
	if sess == nil {
		return nil, ErrNoSession
	}
	if err := s.db.EndSession(r.Context(), sess.ID); err != nil {
		return sess, err
	}
	s.loggedOut(r.Context(), sess.UserID, sess.ID)
	return sess, nil
}

// End ends a session by ID (the sid of an ID token), and clears the
// browser's cookie if it names that session.
func (s *Sessions) End(w http.ResponseWriter, r *http.Request, id string) error {
	userID := ""
	if cur := s.Current(r); cur != nil && cur.ID == id {
		s.Clear(w)
		userID = cur.UserID
	} else if sess, err := s.db.GetSession(r.Context(), id); err == nil && !sess.EndedAt.Valid {
		userID = sess.UserID // the trail names whose session it was
	} else {
		return s.db.EndSession(r.Context(), id) // nothing left to end: no event
	}
	if err := s.db.EndSession(r.Context(), id); err != nil {
		return err
	}
	s.loggedOut(r.Context(), userID, id)
	return nil
}

// loggedOut records the end of a user's session in the audit trail.
func (s *Sessions) loggedOut(ctx context.Context, userID, sessionID string) {
	if s.record != nil {
		s.record(ctx, &storage.Event{Type: EventLogout, UserID: userID, ActorUser: userID,
			Detail: storage.Attributes{"session": sessionID}})
	}
}

// touch restarts a session's idle lifetime. A use within a thirtieth of
// the idle lifetime of the last recorded one (a minute of the default 30)
// is not written: every silent sign-in would otherwise cost a write, and
// the session ends at most that much before its exact idle time, never
// after.
func (s *Sessions) touch(ctx context.Context, sess *storage.Session) error {
	if s.now().Sub(sess.LastSeenAt) < s.Idle/30 {
		return nil
	}
	return s.db.TouchSession(ctx, sess.ID)
}

// handoverTTL is how long a JSON API login has to bring its browser to
// stile to receive the session cookie.
const handoverTTL = 2 * time.Minute

// handover gives a session (started by a JSON API call, which cannot set
// a cookie cross-site) a one-time ticket for the browser to redeem. The
// ticket's MAC covers the authorization request it answers, so the ticket
// is worth nothing beside any other request ID — in particular beside one
// bound to another browser.
func (s *Sessions) handover(ctx context.Context, sessionID, authRequestID string) (string, error) {
	ticket := newValue()
	if err := s.db.SetHandover(ctx, sessionID, s.ticketMAC(ticket, authRequestID), s.now().Add(handoverTTL)); err != nil {
		return "", err
	}
	return ticket, nil
}

// ticketMAC: the ticket never holds a NUL, so the split is unambiguous.
func (s *Sessions) ticketMAC(ticket, authRequestID string) []byte {
	return s.cookie.mac("handover\x00" + authRequestID + "\x00" + ticket)
}

// claim redeems a ticket: the browser gets a fresh cookie for the session.
// The caller has checked that the browser is the authorization request's.
func (s *Sessions) claim(w http.ResponseWriter, r *http.Request, ticket, authRequestID string) (*storage.Session, error) {
	value := newValue()
	sess, err := s.db.ClaimHandover(r.Context(), s.ticketMAC(ticket, authRequestID), s.cookie.mac(value))
	if err != nil {
		return nil, err
	}
	s.setCookie(w, value)
	return sess, nil
}

// refuse burns a ticket presented by the wrong browser, and ends its
// session: a ticket is tried once, whoever tries it.
func (s *Sessions) refuse(ctx context.Context, ticket, authRequestID string) error {
	err := s.db.DropHandover(ctx, s.ticketMAC(ticket, authRequestID))
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
}
