package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/pflag"

	"github.com/stile-id/stile/demo"
)

// runStile runs the CLI in-process with env as its environment and
// returns stdout, stderr and the error.
func runStile(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), err
}

// writeConfig writes a config file and returns its path.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "stile.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkReport is config check --json.
type checkReport struct {
	ConfigFile string       `json:"config_file"`
	Valid      bool         `json:"valid"`
	Settings   []settingRow `json:"settings"`
	Warnings   []warning    `json:"warnings"`
	Problems   []string     `json:"problems"`
}

func (r checkReport) setting(t *testing.T, name string) settingRow {
	t.Helper()
	for _, s := range r.Settings {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("config check shows no %s: %+v", name, r.Settings)
	return settingRow{}
}

func configCheck(t *testing.T, env map[string]string, args ...string) (checkReport, error) {
	t.Helper()
	out, errOut, err := runStile(t, env, append([]string{"config", "check", "--json"}, args...)...)
	var r checkReport
	if jerr := json.Unmarshal([]byte(out), &r); jerr != nil {
		t.Fatalf("config check --json %v: %v\n%s\n%s", args, jerr, out, errOut)
	}
	return r, err
}

// TestConfigPrecedence: for settings of every kind — string, duration,
// rate, bool, list — the command line beats STILE_*, which beats the
// file, which beats the default; each step is seen with its source.
func TestConfigPrecedence(t *testing.T) {
	kinds := []struct {
		name, env, def     string
		file, fromEnv, arg string // as written at each level
		fileWant           string // the value as shown, where it differs
	}{
		{"smtp-host", "STILE_SMTP_HOST", "", "smtp.file.example", "smtp.env.example", "smtp.flag.example", ""},
		{"session-idle", "STILE_SESSION_IDLE", "30m0s", "12h", "2h0m0s", "45m0s", "12h0m0s"},
		{"token-rate", "STILE_TOKEN_RATE", "1200/1m", "60/1m", "30/1m", "10/1m", ""},
		{"email-otp", "STILE_EMAIL_OTP", "true", "false", "true", "false", ""},
		{"trusted-proxies", "STILE_TRUSTED_PROXIES", "", "[10.0.0.0/8, 192.168.0.0/16]", "172.16.0.0/12", "127.0.0.1/32",
			"10.0.0.0/8,192.168.0.0/16"},
	}
	shown := func(written, want string) string {
		if want != "" {
			return want
		}
		return strings.Trim(written, "[]")
	}
	for level, from := range []string{fromDefault, fromFile, fromEnv, fromFlag} {
		t.Run(from, func(t *testing.T) {
			var yaml strings.Builder
			env := map[string]string{}
			args := []string{"--smtp-from", "x@example.com"}
			for _, k := range kinds {
				if level >= 1 {
					yaml.WriteString(k.name + ": " + k.file + "\n")
				}
				if level >= 2 {
					env[k.env] = k.fromEnv
				}
				if level >= 3 {
					args = append(args, "--"+k.name+"="+k.arg)
				}
			}
			if level >= 1 {
				args = append(args, "--config", writeConfig(t, yaml.String()))
			}
			r, err := configCheck(t, env, args...)
			if err != nil {
				t.Fatalf("config check: %v %v", err, r.Problems)
			}
			for _, k := range kinds {
				want := []string{k.def, shown(k.file, k.fileWant), k.fromEnv, k.arg}[level]
				got := r.setting(t, k.name)
				if got.Value != want || got.Source != from {
					t.Errorf("%s: %q from %s, want %q from %s", k.name, got.Value, got.Source, want, from)
				}
				if from == fromEnv && got.Env != k.env {
					t.Errorf("%s: env %q, want %s", k.name, got.Env, k.env)
				}
				if from == fromFile && (got.File == "" || got.Line == 0) {
					t.Errorf("%s: from the file without its name and line: %+v", k.name, got)
				}
			}
		})
	}
}

// TestConfigFileList: a repeatable flag takes a YAML list whole, and the
// environment still wins over the file.
func TestConfigFileList(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want []string
	}{
		{nil, []string{"a", "b", "c"}},
		{map[string]string{"STILE_NAMES": "x,y"}, []string{"x", "y"}},
	} {
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		var names []string
		fs.StringSliceVar(&names, "names", []string{"default"}, "")
		fs.SetAnnotation("names", "env", []string{"STILE_NAMES"})
		fs.String("config", writeConfig(t, "names: [a, b, c]\n"), "")
		s := loadSettings(fs, func(k string) string { return tc.env[k] }, &lineGuard{}, map[string]bool{"names": true})
		if err := s.err(); err != nil {
			t.Fatal(err)
		}
		if strings.Join(names, " ") != strings.Join(tc.want, " ") {
			t.Errorf("env %v: names %q, want %q", tc.env, names, tc.want)
		}
	}
}

// TestConfigEveryProblem: three bad values from three sources — the
// command line, the environment, the file — are listed together, one line
// each, each naming its flag and its source; serve and config check agree
// and both fail. The same settings made good pass.
func TestConfigEveryProblem(t *testing.T) {
	file := writeConfig(t, "issuer: http://localhost:8080\nsession-idle: soon\n")
	env := map[string]string{"STILE_TOKEN_RATE": "lots"}
	args := []string{"--authorize-rate", "0/1m", "--config", file}
	want := []string{
		"--authorize-rate cannot be 0: every authorization request stores a row; raise it instead (from the command line)",
		`--token-rate "lots": rate "lots": want N/DURATION, e.g. 60/1m (from env STILE_TOKEN_RATE)`,
		`--session-idle "soon": time: invalid duration "soon" (from ` + file + `:2 session-idle)`,
	}
	_, _, err := runStile(t, env, append([]string{"serve", "--database", "sqlite:" + filepath.Join(t.TempDir(), "never.db")}, args...)...)
	if err == nil {
		t.Fatal("serve started with three bad settings")
	}
	lines := strings.Split(err.Error(), "\n")
	if lines[0] != "the configuration has 3 problems:" || len(lines) != 4 {
		t.Fatalf("serve: %v", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), "\n  "+w) {
			t.Errorf("serve's problems lack the line\n  %s\ngot:\n%v", w, err)
		}
	}
	r, err := configCheck(t, env, args...)
	if err == nil || r.Valid || len(r.Problems) != 3 {
		t.Fatalf("config check: %v valid=%v %q", err, r.Valid, r.Problems)
	}
	for _, w := range want {
		found := false
		for _, p := range r.Problems {
			found = found || p == w
		}
		if !found {
			t.Errorf("config check's problems lack %q: %q", w, r.Problems)
		}
	}
	// A bad command-line value is listed with the rest too, and a refused
	// value leaves the default in force rather than a zero.
	_, _, err = runStile(t, env, "config", "check", "--session-absolute", "soon", "--session-idle", "-1s")
	for _, w := range []string{`--session-absolute "soon": time: invalid duration "soon" (from the command line)`,
		"--session-idle must be positive, not -1s (from the command line)", "(from env STILE_TOKEN_RATE)"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("config check: %v, want %q", err, w)
		}
	}
	if err != nil && strings.Contains(err.Error(), "--session-absolute must be positive") {
		t.Errorf("the refused --session-absolute left a zero behind: %v", err)
	}

	// The positive control: the same sources with good values.
	good := writeConfig(t, "issuer: http://localhost:8080\nsession-idle: 1h\n")
	r, err = configCheck(t, map[string]string{"STILE_TOKEN_RATE": "100/1m"}, "--authorize-rate", "10/1m", "--config", good)
	if err != nil || !r.Valid || len(r.Problems) != 0 {
		t.Fatalf("good settings refused: %v %q", err, r.Problems)
	}
	if s := r.setting(t, "session-idle"); s.Value != "1h0m0s" || s.Source != fromFile || s.Line != 2 {
		t.Errorf("session-idle: %+v", s)
	}
}

// TestConfigFileErrors: a key no command has, a value of the wrong shape,
// a key twice, a file that is not YAML or not there are refused, naming
// the file and the line. A key of another command is no error for a
// command that lacks it; an unknown one is an error everywhere.
func TestConfigFileErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"issuer: http://localhost:8080\ntokn-rate: 60/1m\n", `:2: unknown setting "tokn-rate"`},
		{"smtp-port: [25, 587]\n", `--smtp-port wants one int value, not a list (from `},
		{"issuer:\n  url: http://x\n", `--issuer wants a value, not a mapping (from `},
		{"session-idle: 1h\nsession-idle: 2h\n", `:2: "session-idle" is set twice (first on line 1)`},
		{"config: other.yaml\n", `:1: "config" cannot be set from the config file itself`},
		{"- issuer\n", `:1: want a mapping of setting names to values`},
		{"issuer: [unclosed\n", `yaml: line 1`},
		{"demo: true\n", `unknown setting "demo"`},
	} {
		file := writeConfig(t, tc.yaml)
		_, _, err := runStile(t, nil, "config", "check", "--config", file)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), file) {
			t.Errorf("%q: %v, want an error naming %s and saying %q", tc.yaml, err, file, tc.want)
		}
	}
	_, _, err := runStile(t, nil, "config", "check", "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	if err == nil || !strings.Contains(err.Error(), "missing.yaml: no such file") {
		t.Errorf("a missing file: %v", err)
	}
	serveOnly := writeConfig(t, "token-rate: 60/1m\nissuer: http://localhost:8080\n")
	if out, _, err := runStile(t, nil, "version", "--config", serveOnly); err != nil || !strings.Contains(out, "stile") {
		t.Errorf("version with serve's settings in the file: %v %q", err, out)
	}
	unknown := writeConfig(t, "tokn-rate: 60/1m\n")
	if _, _, err := runStile(t, nil, "version", "--config", unknown); err == nil || !strings.Contains(err.Error(), "tokn-rate") {
		t.Errorf("version with an unknown key: %v", err)
	}
	// STILE_CONFIG names the file as --config does.
	if r, err := configCheck(t, map[string]string{"STILE_CONFIG": serveOnly}); err != nil || r.setting(t, "token-rate").Source != fromFile {
		t.Errorf("STILE_CONFIG: %v %+v", err, r.setting(t, "token-rate"))
	}
}

// TestConfigCheckOutput: the table shows every serve flag with its value
// and source; passwords inside URLs and secret settings are redacted,
// while the rest of the same values is shown; nothing is opened or
// created.
func TestConfigCheckOutput(t *testing.T) {
	dir := t.TempDir()
	db := "postgres://stile:hunter2@db.example.com:5432/stile?sslmode=disable"
	file := writeConfig(t, "database: "+db+"\nsms-webhook-url: https://sms.example.com/send?token=s3cr3t-tok&from=stile\n"+
		"smtp-host: smtp.example.com\nsmtp-from: id@example.com\nsmtp-password-file: "+filepath.Join(dir, "smtp.pw")+"\n")
	out, errOut, err := runStile(t, nil, "config", "check", "--config", file, "--secret-file", filepath.Join(dir, "stile.key"))
	if err != nil {
		t.Fatalf("config check: %v\n%s", err, errOut)
	}
	for _, secret := range []string{"hunter2", "s3cr3t-tok"} {
		if strings.Contains(out, secret) {
			t.Errorf("config check shows the secret %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{
		"postgres://stile:REDACTED@db.example.com:5432/stile?sslmode=disable",
		"from=stile", "token=REDACTED", "smtp.example.com", "smtp-password-file", filepath.Join(dir, "smtp.pw"),
		"file " + file + ":1", "The configuration is valid.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("config check lacks %q:\n%s", want, out)
		}
	}
	fs := serveFlags()
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" && !strings.Contains(out, "\n"+f.Name+" ") {
			t.Errorf("config check does not show --%s", f.Name)
		}
	})
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("config check created %v", entries)
	}

	r, err := configCheck(t, nil, "--config", file)
	if err != nil || !r.Valid || r.ConfigFile != file {
		t.Fatalf("--json: %v %+v", err, r)
	}
	if s := r.setting(t, "database"); s.Value != "postgres://stile:REDACTED@db.example.com:5432/stile?sslmode=disable" || s.Line != 1 {
		t.Errorf("--json database: %+v", s)
	}
	if s := r.setting(t, "listen"); s.Value != ":8080" || s.Source != fromDefault {
		t.Errorf("--json listen: %+v", s)
	}
}

// TestRedactSetting: a setting named for a secret is hidden whole; a file
// of one is a path and shown; passwords in URLs and DSNs are hidden.
func TestRedactSetting(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	for _, n := range []string{"smtp-password", "sms-webhook-token", "api-secret", "smtp-password-file", "token-rate", "odd"} {
		fs.String(n, "", "")
	}
	fs.SetAnnotation("odd", "secret", []string{"true"})
	for _, tc := range []struct{ flag, in, want string }{
		{"smtp-password", "pw", "REDACTED"},
		{"sms-webhook-token", "tok", "REDACTED"},
		{"api-secret", "s", "REDACTED"},
		{"odd", "s", "REDACTED"},
		{"smtp-password", "", ""},
		{"smtp-password-file", "/run/secrets/smtp", "/run/secrets/smtp"},
		{"token-rate", "60/1m", "60/1m"},
		{"odd", "", ""},
	} {
		if got := redactSetting(fs.Lookup(tc.flag), tc.in); got != tc.want {
			t.Errorf("%s=%q shown as %q, want %q", tc.flag, tc.in, got, tc.want)
		}
	}
	for in, want := range map[string]string{
		"postgres://user:pw@host/db":                         "postgres://user:REDACTED@host/db",
		"postgres://user@host/db":                            "postgres://user@host/db",
		"postgres://host/db?user=u&password=pw":              "postgres://host/db?password=REDACTED&user=u",
		"host=db user=stile password=pw dbname=stile":        "host=db user=stile password=REDACTED dbname=stile",
		"host=db password='p w' dbname=stile":                "host=db password=REDACTED dbname=stile",
		"sqlite:stile.db":                                    "sqlite:stile.db",
		"https://sms.example.com/send?from=stile":            "https://sms.example.com/send?from=stile",
		"https://u:pw@sms.example.com/send?api_key=k&from=s": "https://u:REDACTED@sms.example.com/send?api_key=REDACTED&from=s",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// serveFlags are serve's flags, inherited ones included.
func serveFlags() *pflag.FlagSet {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	newServeOptions().register(fs)
	c := &cli{}
	envFlag(fs, &c.database, "database", "", "STILE_DATABASE", "")
	envFlag(fs, &c.secretFile, "secret-file", "", "STILE_SECRET_FILE", "")
	return fs
}

// TestConfigWarnings: config check warns when the issuer sends clients
// where --listen does not listen with no proxy between, only notes it
// when a proxy is configured, says nothing for an https issuer (a TLS
// proxy is in front) or when they agree; and warns for plain http to a
// host that is not this machine, and for a demo reachable from elsewhere.
func TestConfigWarnings(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" : no warning or note at all
	}{
		{[]string{"--issuer", "http://localhost:8080", "--listen", ":9090"}, "warning: --issuer http://localhost:8080 is not where --listen :9090 listens"},
		{[]string{"--issuer", "http://localhost:8080", "--listen", "10.1.2.3:8080"}, "warning: --issuer http://localhost:8080 is not where"},
		{[]string{"--issuer", "http://localhost:8080", "--listen", ":9090", "--trusted-proxies", "127.0.0.1/32"}, "note: --issuer http://localhost:8080 is not where"},
		{[]string{"--issuer", "https://id.example.com", "--listen", ":8080"}, ""},
		{[]string{"--issuer", "https://id.example.com", "--listen", "127.0.0.1:8080", "--trusted-proxies", "127.0.0.1/32"}, ""},
		{[]string{"--issuer", "http://localhost:8080", "--listen", ":8080"}, ""},
		{[]string{"--issuer", "http://127.0.0.1:8080", "--listen", "127.0.0.1:8080"}, ""},
		{[]string{"--issuer", "http://localhost:9090", "--listen", "[::1]:9090"}, ""},
		{[]string{"--issuer", "http://id.example.com:8080", "--listen", ":8080"}, "warning: --issuer http://id.example.com:8080 is plain http on a host other than this machine"},
		{[]string{"--issuer", "http://id.example.com", "--listen", ":80", "--trusted-proxies", "10.0.0.0/8"}, "warning: --issuer http://id.example.com is plain http"},
		{[]string{"--demo", "--listen", ":9090"}, "warning: --demo prints its password, and --listen :9090 accepts connections from other machines"},
		{[]string{"--demo"}, ""},
		{[]string{"--listen", ":9090"}, "note: no --issuer: tokens and redirects name http://localhost:9090"},
		{[]string{"--listen", "127.0.0.1:9090"}, ""},
	} {
		out, _, err := runStile(t, nil, append([]string{"config", "check"}, tc.args...)...)
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		hasAny := strings.Contains(out, "\nwarning: ") || strings.Contains(out, "\nnote: ")
		switch {
		case tc.want == "" && hasAny:
			t.Errorf("%v: a warning where none is due:\n%s", tc.args, out)
		case tc.want != "" && !strings.Contains(out, "\n"+tc.want):
			t.Errorf("%v: want %q:\n%s", tc.args, tc.want, out)
		}
	}
	// --json carries them too, soft or not.
	r, _ := configCheck(t, nil, "--issuer", "http://localhost:8080", "--listen", ":9090", "--trusted-proxies", "127.0.0.1/32")
	if len(r.Warnings) != 1 || !r.Warnings[0].Soft {
		t.Errorf("--json warnings: %+v", r.Warnings)
	}
}

// TestIssuerFromListen: without --issuer the issuer follows --listen, and
// --demo listens on loopback unless told otherwise; a given --listen or
// STILE_LISTEN wins over the demo's default.
func TestIssuerFromListen(t *testing.T) {
	for _, tc := range []struct {
		env                    map[string]string
		args                   []string
		issuer, listen, source string
	}{
		{nil, []string{"--listen", ":9090"}, "http://localhost:9090", ":9090", fromFlag},
		{nil, []string{"--listen", "0.0.0.0:9090"}, "http://localhost:9090", "0.0.0.0:9090", fromFlag},
		{nil, []string{"--listen", "192.0.2.7:9090"}, "http://192.0.2.7:9090", "192.0.2.7:9090", fromFlag},
		{nil, []string{"--listen", "[::1]:9090"}, "http://[::1]:9090", "[::1]:9090", fromFlag},
		{nil, nil, "http://localhost:8080", ":8080", fromDefault},
		{nil, []string{"--demo"}, "http://localhost:8080", "127.0.0.1:8080", fromDefault},
		{nil, []string{"--demo", "--listen", ":9090"}, "http://localhost:9090", ":9090", fromFlag},
		{map[string]string{"STILE_LISTEN": ":7070"}, []string{"--demo"}, "http://localhost:7070", ":7070", fromEnv},
		{nil, []string{"--demo", "--config", writeConfig(t, "listen: 127.0.0.1:6060\n")}, "http://localhost:6060", "127.0.0.1:6060", fromFile},
	} {
		r, err := configCheck(t, tc.env, tc.args...)
		if err != nil {
			t.Errorf("%v %v: %v", tc.env, tc.args, err)
			continue
		}
		is, ls := r.setting(t, "issuer"), r.setting(t, "listen")
		if is.Value != tc.issuer || is.Source != fromDerived || ls.Value != tc.listen || ls.Source != tc.source {
			t.Errorf("%v %v: issuer %+v, listen %+v; want %s derived, %s from %s", tc.env, tc.args, is, ls, tc.issuer, tc.listen, tc.source)
		}
	}
	// A given issuer is kept as it is.
	if r, _ := configCheck(t, nil, "--listen", ":9090", "--issuer", "https://id.example.com"); r.setting(t, "issuer").Value != "https://id.example.com" {
		t.Errorf("a given --issuer was replaced: %+v", r.setting(t, "issuer"))
	}
	// An issuer that cannot be one, and a --listen that is no address.
	_, _, err := runStile(t, nil, "config", "check", "--issuer", "id.example.com", "--listen", "8080")
	for _, w := range []string{`--issuer "id.example.com": give the URL`, `--listen "8080": want HOST:PORT`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("bad issuer and listen: %v, want %q", err, w)
		}
	}
}

// TestDemoOnListenPort starts a real `stile serve --demo --listen :PORT`
// on a free port and reads what it prints: the banner, its log, discovery
// and the demo's redirect all name http://localhost:PORT.
func TestDemoOnListenPort(t *testing.T) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	want := "http://localhost:" + port
	stdout := &markWriter{mark: "Then sign in:", seen: make(chan struct{})}
	stderr := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	db := "sqlite:" + filepath.Join(t.TempDir(), "stile.db")
	go func() {
		done <- run(ctx, []string{"serve", "--demo", "--listen", ":" + port, "--database", db}, func(string) string { return "" },
			strings.NewReader(""), stdout, stderr)
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-stdout.seen:
	case err := <-done:
		t.Fatalf("serve --demo: %v\n%s", err, stderr.String())
	}
	banner := stdout.String()
	for _, w := range []string{"stile is running at " + want + " (demo mode)", want + demo.LoginPath, want + demo.CustomStartPath} {
		if !strings.Contains(banner, w) {
			t.Errorf("the banner lacks %q:\n%s", w, banner)
		}
	}
	if strings.Contains(banner, "8080") {
		t.Errorf("the banner still names 8080:\n%s", banner)
	}
	if log := stderr.String(); !strings.Contains(log, "issuer="+want) || !strings.Contains(log, "--demo prints its password") {
		t.Errorf("the log lacks the issuer %s or the warning for a demo on every interface:\n%s", want, log)
	}
	var disc struct{ Issuer string }
	resp, err := http.Get(want + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&disc)
	resp.Body.Close()
	if disc.Issuer != want {
		t.Errorf("discovery's issuer %q, want %q", disc.Issuer, want)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.Get(want + demo.LoginPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, want+"/") {
		t.Errorf("the demo sign-in redirects to %q, want %s/…", loc, want)
	}
}

// markWriter closes seen once mark has been written.
type markWriter struct {
	mu   sync.Mutex
	buf  strings.Builder
	mark string
	seen chan struct{}
	once sync.Once
}

func (w *markWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.mark) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *markWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestConfigDocs: docs/configuration.md lists every flag of serve with
// its environment variable, and its example file passes config check.
func TestConfigDocs(t *testing.T) {
	b, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	fs := serveFlags()
	envFlag(fs, new(string), "config", "", "STILE_CONFIG", "")
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" {
			return
		}
		row := "| `" + f.Name + "` | "
		if env := f.Annotations["env"]; len(env) > 0 {
			row += "`" + env[0] + "` |"
		} else {
			row += "|"
		}
		if !strings.Contains(doc, "\n"+row) {
			t.Errorf("docs/configuration.md has no row %q", row)
		}
	})
	_, rest, ok := strings.Cut(doc, "```yaml\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/configuration.md has no example file")
	}
	r, err := configCheck(t, nil, "--config", writeConfig(t, example))
	if err != nil || !r.Valid {
		t.Fatalf("the documented example: %v %q", err, r.Problems)
	}
	if s := r.setting(t, "sign-in-with"); s.Value != "username,email" || s.Source != fromFile {
		t.Errorf("the example's sign-in-with: %+v", s)
	}
	if len(r.Warnings) != 0 {
		t.Errorf("the documented example draws warnings: %+v", r.Warnings)
	}
}
