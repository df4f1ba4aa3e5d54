package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/stile-id/stile/login"
)

// deliveryOptions are serve's flags for sending one-time codes and notices.
type deliveryOptions struct {
	smtpHost, smtpTLS, smtpUser, smtpPasswordFile, smtpFrom string
	smtpPort                                                int
	smsURL, smsTokenFile                                    string
	emailOTP, devLogCodes                                   bool
	codeLifetime                                            time.Duration
}

func (o *deliveryOptions) register(f *pflag.FlagSet) {
	envFlag(f, &o.smtpHost, "smtp-host", "", "STILE_SMTP_HOST", "SMTP server for emailed codes and notices")
	f.IntVar(&o.smtpPort, "smtp-port", 587, "SMTP port (env STILE_SMTP_PORT)")
	f.SetAnnotation("smtp-port", "env", []string{"STILE_SMTP_PORT"})
	envFlag(f, &o.smtpTLS, "smtp-tls", "starttls", "STILE_SMTP_TLS", "starttls, tls (implicit, port 465) or none (a local relay only)")
	envFlag(f, &o.smtpUser, "smtp-username", "", "STILE_SMTP_USERNAME", "SMTP user name, if the server wants one")
	envFlag(f, &o.smtpPasswordFile, "smtp-password-file", "", "STILE_SMTP_PASSWORD_FILE", "file holding the SMTP password")
	envFlag(f, &o.smtpFrom, "smtp-from", "", "STILE_SMTP_FROM", "sender address, e.g. 'Sign-in <no-reply@example.com>'")
	envFlag(f, &o.smsURL, "sms-webhook-url", "", "STILE_SMS_WEBHOOK_URL", `HTTPS endpoint that sends texts: POST {"to","message"}`)
	envFlag(f, &o.smsTokenFile, "sms-webhook-token-file", "", "STILE_SMS_WEBHOOK_TOKEN_FILE", "file holding a bearer token for the SMS webhook")
	f.BoolVar(&o.emailOTP, "email-otp", true, "let an emailed code stand in for the second factor (the weakest; env STILE_EMAIL_OTP)")
	f.SetAnnotation("email-otp", "env", []string{"STILE_EMAIL_OTP"})
	f.BoolVar(&o.devLogCodes, "dev-log-codes", false, "DEVELOPMENT ONLY: log codes instead of sending them where no sender is set")
	o.codeLifetime = login.DefaultDelivery.CodeLifetime
	durationFlag(f, &o.codeLifetime, "otp-code-lifetime", "STILE_OTP_CODE_LIFETIME", "how long an emailed or texted code works (at most 10m)")
}

// validate checks the flags without reading the secret files.
func (o *deliveryOptions) validate() error {
	var errs []error
	if o.codeLifetime <= 0 || o.codeLifetime > 10*time.Minute {
		errs = append(errs, fmt.Errorf("--otp-code-lifetime %s: must be between 1s and 10m (NIST SP 800-63B)", o.codeLifetime))
	}
	if o.smtpHost != "" && o.smtpFrom == "" {
		errs = append(errs, errors.New("--smtp-from: a sender address is needed with --smtp-host"))
	}
	if o.smtpHost != "" && (o.smtpPort < 1 || o.smtpPort > 65535) {
		errs = append(errs, fmt.Errorf("--smtp-port %d: not a port", o.smtpPort))
	}
	switch o.smtpTLS {
	case "", "starttls", "tls", "none":
	default:
		errs = append(errs, fmt.Errorf("--smtp-tls %q: use starttls, tls or none", o.smtpTLS))
	}
	if o.smsURL != "" && !strings.HasPrefix(o.smsURL, "https://") && !strings.HasPrefix(o.smsURL, "http://127.0.0.1") &&
		!strings.HasPrefix(o.smsURL, "http://localhost") {
		errs = append(errs, fmt.Errorf("--sms-webhook-url %s: use https (http only on the local machine)", redactURL(o.smsURL)))
	}
	return errors.Join(errs...)
}

// delivery builds the senders the flags describe.
func (o *deliveryOptions) delivery(log *slog.Logger) (login.Delivery, error) {
	d := login.DefaultDelivery
	d.EmailFactor, d.CodeLifetime = o.emailOTP, o.codeLifetime
	if err := o.validate(); err != nil {
		return d, err
	}
	if o.smtpHost != "" {
		pw, err := readSecretFile("--smtp-password-file", o.smtpPasswordFile)
		if err != nil {
			return d, err
		}
		d.Email = &login.SMTP{Host: o.smtpHost, Port: o.smtpPort, TLS: o.smtpTLS, Username: o.smtpUser, Password: pw, From: o.smtpFrom}
	}
	if o.smsURL != "" {
		token, err := readSecretFile("--sms-webhook-token-file", o.smsTokenFile)
		if err != nil {
			return d, err
		}
		d.SMS = &login.Webhook{URL: o.smsURL, Token: token}
	}
	if o.devLogCodes {
		log.Warn("--dev-log-codes: one-time codes are written to this log instead of being sent; never use this in production")
		if d.Email == nil {
			d.Email = login.LogSender{Log: log}
		}
		if d.SMS == nil {
			d.SMS = login.LogSender{Log: log}
		}
	}
	return d, nil
}

// readSecretFile reads a secret from a file (never from the command line);
// "" gives "".
func readSecretFile(flag, path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	return strings.TrimSpace(string(b)), nil
}
