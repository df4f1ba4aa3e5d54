package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/stile-id/stile/storage"
)

// mailbox is a real SMTP server (github.com/emersion/go-smtp) on loopback
// that keeps what it receives: stile's emails go through a real SMTP
// conversation.
type mailbox struct {
	host string
	port int
	mu   sync.Mutex
	msgs []mail
}

type mail struct{ to, data string }

func newMailbox(t *testing.T) *mailbox {
	t.Helper()
	mb := &mailbox{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &smtpSession{mb: mb}, nil }))
	srv.Domain, srv.AllowInsecureAuth = "mail.test", true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().(*net.TCPAddr)
	mb.host, mb.port = addr.IP.String(), addr.Port
	return mb
}

type smtpSession struct {
	mb *mailbox
	to []string
}

func (s *smtpSession) Reset()        { s.to = nil }
func (s *smtpSession) Logout() error { return nil }
func (s *smtpSession) Mail(string, *smtp.MailOptions) error {
	return nil
}
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}
func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.mb.mu.Lock()
	defer s.mb.mu.Unlock()
	for _, to := range s.to {
		s.mb.msgs = append(s.mb.msgs, mail{to: to, data: string(b)})
	}
	return nil
}

// sent is every mail to the address so far, oldest first. stile sends
// synchronously: a request's mail is here when its answer is.
func (mb *mailbox) sent(to string) []string {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	var out []string
	for _, m := range mb.msgs {
		if m.to == to {
			out = append(out, m.data)
		}
	}
	return out
}

// last returns the newest mail to the address whose text contains want.
func (mb *mailbox) last(t *testing.T, to, want string) string {
	t.Helper()
	msgs := mb.sent(to)
	for i := len(msgs) - 1; i >= 0; i-- {
		if strings.Contains(msgs[i], want) {
			return msgs[i]
		}
	}
	t.Fatalf("no mail to %s containing %q", to, want)
	return ""
}

func (mb *mailbox) count(to string) int { return len(mb.sent(to)) }

var sixDigits = regexp.MustCompile(`\b(\d{6})\b`)

// codeIn reads a 6-digit code out of a message.
func codeIn(t *testing.T, text string) string {
	t.Helper()
	m := sixDigits.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no code in:\n%s", text)
	}
	return m[1]
}

// smsGateway is an SMS webhook receiver, as an operator's gateway would be.
type smsGateway struct {
	url string
	mu  sync.Mutex
	got []struct{ To, Message, Auth string }
}

func newSMSGateway(t *testing.T) *smsGateway {
	g := &smsGateway{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct{ To, Message string }
		json.NewDecoder(r.Body).Decode(&m)
		g.mu.Lock()
		g.got = append(g.got, struct{ To, Message, Auth string }{m.To, m.Message, r.Header.Get("Authorization")})
		g.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	g.url = srv.URL
	return g
}

// last is the last text to a number, as stile sends it (E.164: '+' and
// digits only), however the number is spelled here.
func (g *smsGateway) last(t *testing.T, number string) (message, auth string) {
	t.Helper()
	to, _ := storage.E164(number)
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := len(g.got) - 1; i >= 0; i-- {
		if g.got[i].To == to {
			return g.got[i].Message, g.got[i].Auth
		}
	}
	t.Fatalf("no text to %s", to)
	return "", ""
}

// total is how many mails arrived, to any address.
func (mb *mailbox) total() int { mb.mu.Lock(); defer mb.mu.Unlock(); return len(mb.msgs) }
