package main

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func (c *cli) configCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check stile's configuration"}
	cmd.AddCommand(c.configCheckCommand())
	return cmd
}

// configCheckCommand takes serve's flags (the same definitions) and shows
// what serve would run with, without opening the database or creating a
// file.
func (c *cli) configCheckCommand() *cobra.Command {
	o := newServeOptions()
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Print the configuration stile serve would run with, where each value comes from, and its problems",
		Long: "Print the configuration stile serve would run with: every setting, its value (secrets redacted) and\n" +
			"its source (default, flag, env, file). It takes serve's flags, reads STILE_* variables and the\n" +
			"--config file as serve does, prints the warnings serve would log, and exits non-zero listing every\n" +
			"problem if serve would refuse to start. It opens no database and creates no file.",
		Args:        cobra.NoArgs,
		Annotations: collects,
		RunE:        func(cmd *cobra.Command, _ []string) error { return c.configCheck(o) },
	}
	o.register(cmd.Flags())
	c.addJSON(cmd)
	return cmd
}

// settingRow is one line of config check.
type settingRow struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Source string `json:"source"`           // default, flag, env, file or derived
	Env    string `json:"env,omitempty"`    // source env: the variable
	File   string `json:"file,omitempty"`   // source file: the file…
	Line   int    `json:"line,omitempty"`   // …and the line
	Detail string `json:"detail,omitempty"` // default, derived: how it was chosen
}

func (c *cli) configCheck(o *serveOptions) error {
	warnings, err := c.settle(o)
	var probs []string
	if ps, ok := err.(problems); ok {
		for _, p := range ps {
			probs = append(probs, p.Error())
		}
	}
	rows := c.settings.rows()
	if c.jsonOut {
		if werr := c.printJSON(map[string]any{"config_file": c.settings.file, "valid": err == nil, "settings": rows,
			"warnings": nonNil(warnings), "problems": nonNil(probs)}); werr != nil {
			return werr
		}
		return err
	}
	if c.settings.file != "" {
		fmt.Fprintf(c.stdout, "config file: %s\n\n", c.settings.file)
	}
	table := [][]string{{"SETTING", "VALUE", "SOURCE"}}
	for _, r := range rows {
		v := r.Value
		if v == "" {
			v = `""`
		}
		table = append(table, []string{r.Name, v, c.settings.source(r.Name).String()})
	}
	if err := c.printRows(table); err != nil {
		return err
	}
	if len(warnings) > 0 {
		fmt.Fprintln(c.stdout)
	}
	for _, w := range warnings {
		fmt.Fprintln(c.stdout, w)
	}
	if err == nil {
		fmt.Fprintln(c.stdout, "\nThe configuration is valid.")
	}
	return err
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// rows are the settings as config check shows them, secrets redacted.
func (s *settings) rows() []settingRow {
	var rows []settingRow
	for _, name := range settingNames(s.fs) {
		if name == "config" {
			continue
		}
		f := s.fs.Lookup(name)
		src := s.source(name)
		rows = append(rows, settingRow{Name: name, Value: redactSetting(f, f.Value.String()), Source: src.kind, Env: src.env,
			File: src.file, Line: src.line, Detail: src.note})
	}
	return rows
}

// secretWords end the names of settings whose value is a secret
// (smtp-password, a webhook's token…); a flag can also say so with the
// annotation "secret". A setting that names a file holding a secret
// (smtp-password-file) is a path, not a secret.
var secretWords = []string{"password", "secret", "token", "key", "apikey", "credentials"}

// redactSetting shows a value with every secret in it replaced.
func redactSetting(f *pflag.Flag, v string) string {
	if v == "" {
		return ""
	}
	parts := strings.Split(f.Name, "-")
	if len(f.Annotations["secret"]) > 0 || slices.Contains(secretWords, parts[len(parts)-1]) {
		return "REDACTED"
	}
	return redactURL(v)
}

var dsnPassword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('[^']*'|\S+)`)

// redactURL hides the password of a URL (postgres://user:pw@host/db) and
// the values of its query parameters that name a secret (?password=…,
// ?sslpassword=…, ?token=…).
func redactURL(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return dsnPassword.ReplaceAllString(v, "${1}REDACTED") // host=… password=…
	}
	changed := false
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
		changed = true
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			for _, w := range secretWords {
				if strings.Contains(strings.ToLower(k), w) {
					q.Set(k, "REDACTED")
					changed = true
				}
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	if !changed {
		return v
	}
	return u.String()
}
