package login

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/wneessen/go-mail"
)

// Sender delivers a short text to an address (email) or a number (SMS).
type Sender interface {
	Send(ctx context.Context, to, subject, text string) error
}

// SMTP sends email through an SMTP server (github.com/wneessen/go-mail).
type SMTP struct {
	Host     string
	Port     int
	TLS      string // "starttls" (default), "tls" (implicit, e.g. port 465), or "none" (only for a local relay)
	Username string // empty: no authentication
	Password string
	From     string
}

// Send implements Sender.
func (s *SMTP) Send(ctx context.Context, to, subject, text string) error {
	opts := []mail.Option{mail.WithPort(s.Port), mail.WithTimeout(15 * time.Second)}
	switch s.TLS {
	case "tls":
		opts = append(opts, mail.WithSSL())
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if s.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(s.Username), mail.WithPassword(s.Password))
	}
	c, err := mail.NewClient(s.Host, opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	m := mail.NewMsg()
	if err := m.From(s.From); err != nil {
		return fmt.Errorf("smtp sender %q: %w", s.From, err)
	}
	if err := m.To(to); err != nil {
		return fmt.Errorf("smtp recipient: %w", err)
	}
	m.Subject(subject)
	m.SetBodyString(mail.TypeTextPlain, text)
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		return fmt.Errorf("send mail via %s:%d: %w", s.Host, s.Port, err)
	}
	return nil
}

// Webhook sends SMS (or voice) messages through an operator's gateway: a
// POST of {"to": number, "message": text} as JSON, with a bearer token if
// one is set. Any 2xx answer is success.
type Webhook struct {
	URL    string
	Token  string
	Client *http.Client
}

// Send implements Sender.
func (w *Webhook) Send(ctx context.Context, to, _, text string) error {
	body, _ := json.Marshal(map[string]string{"to": to, "message": text})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("sms webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if w.Token != "" {
		req.Header.Set("Authorization", "Bearer "+w.Token)
	}
	client := w.Client
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("sms webhook: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("sms webhook answered %d", resp.StatusCode)
	}
	return nil
}

// LogSender writes messages, codes included, to the log instead of
// sending them. It is for development only: stile warns at start when it
// is on, since the log must otherwise never hold a code.
type LogSender struct{ Log *slog.Logger }

// Send implements Sender.
func (l LogSender) Send(_ context.Context, to, subject, text string) error {
	l.Log.Warn("DEVELOPMENT: message not sent, logged instead", "to", to, "subject", subject, "text", text)
	return nil
}
