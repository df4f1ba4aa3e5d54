package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/pflag"
)

// logFormat is --log-format: how every line stile writes looks, the
// OpenID library's included (serve makes stile's logger the default).
type logFormat string

const (
	logText logFormat = "text"
	logJSON logFormat = "json"
)

func (f *logFormat) String() string {
	if *f == "" {
		return string(logText)
	}
	return string(*f)
}

func (f *logFormat) Set(s string) error {
	switch logFormat(s) {
	case logText, logJSON:
		*f = logFormat(s)
		return nil
	}
	return fmt.Errorf("%q is not a log format: use json or text", s)
}

func (f *logFormat) Type() string { return "format" }

func (f *logFormat) register(fs *pflag.FlagSet) {
	fs.Var(f, "log-format", "how log lines are written: text (key=value) or json, one object a line (env STILE_LOG_FORMAT)")
	fs.SetAnnotation("log-format", "env", []string{"STILE_LOG_FORMAT"})
}

// newLogger writes to w in format f; every line logged with a request's
// context carries its request_id.
func newLogger(w io.Writer, f logFormat) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if f == logJSON {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(requestIDHandler{h})
}
