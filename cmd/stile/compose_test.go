package main

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/stile-id/stile/internal/clientip"
)

// composeFile is the part of compose.yaml the checks read.
type composeFile struct {
	Services map[string]*composeService `yaml:"services"`
	Networks map[string]*struct {
		Internal bool `yaml:"internal"`
		IPAM     struct {
			Config []struct {
				Subnet string `yaml:"subnet"`
			} `yaml:"config"`
		} `yaml:"ipam"`
	} `yaml:"networks"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []composeVolume   `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	Networks    []string          `yaml:"networks"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

// composeVolume is a volume in either syntax ("src:dst" or the long form).
type composeVolume struct {
	Type, Source, Target string
	ReadOnly             bool
}

func (v *composeVolume) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		parts := strings.Split(n.Value, ":")
		if len(parts) < 2 {
			return fmt.Errorf("volume %q: want SOURCE:TARGET", n.Value)
		}
		v.Source, v.Target, v.ReadOnly = parts[0], parts[1], len(parts) > 2 && parts[2] == "ro"
		return nil
	}
	var long struct {
		Type     string `yaml:"type"`
		Source   string `yaml:"source"`
		Target   string `yaml:"target"`
		ReadOnly bool   `yaml:"read_only"`
	}
	if err := n.Decode(&long); err != nil {
		return err
	}
	*v = composeVolume{long.Type, long.Source, long.Target, long.ReadOnly}
	return nil
}

func parseCompose(t *testing.T) *composeFile {
	t.Helper()
	var cf composeFile
	if err := yaml.Unmarshal([]byte(readRepoFile(t, "compose.yaml")), &cf); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return &cf
}

// mount is the volume of s mounted at target, if any.
func (s *composeService) mount(target string) *composeVolume {
	for i := range s.Volumes {
		if s.Volumes[i].Target == target {
			return &s.Volumes[i]
		}
	}
	return nil
}

// roles sorts the services: PostgreSQL, stile (built from this
// repository) and the proxy (nginx).
func (cf *composeFile) roles() (postgres string, stiles []string, proxy string) {
	for name, s := range cf.Services {
		switch {
		case strings.HasPrefix(s.Image, "postgres:"):
			postgres = name
		case s.Build == ".":
			stiles = append(stiles, name)
		case strings.HasPrefix(s.Image, "nginx:"):
			proxy = name
		}
	}
	slices.Sort(stiles)
	return
}

// checkCompose lists what is wrong with compose.yaml: what a newcomer's
// `docker compose up` needs, and what two instances must share.
func checkCompose(cf *composeFile, env map[string]bool, nginxConf string) []string {
	var bad []string
	pg, stiles, proxy := cf.roles()
	if pg == "" || !strings.HasPrefix(cf.Services[pg].Image, "postgres:15") {
		return []string{"no postgres:15 service"}
	}
	if len(stiles) != 2 {
		return []string{fmt.Sprintf("stile services %v, want two stile services built from the repository", stiles)}
	}
	if proxy == "" {
		return []string{"no nginx proxy service"}
	}
	for name, s := range cf.Services {
		for k := range s.Environment {
			if strings.HasPrefix(k, "STILE_") && !env[k] {
				bad = append(bad, fmt.Sprintf("%s: %s: stile reads no such variable", name, k))
			}
		}
		if s.Healthcheck == nil || len(s.Healthcheck.Test) < 2 {
			bad = append(bad, name+": no healthcheck")
		}
	}
	if hc := cf.Services[pg].Healthcheck; hc != nil && !slices.Contains(hc.Test, "pg_isready") {
		bad = append(bad, fmt.Sprintf("%s: healthcheck %v does not ask pg_isready", pg, hc.Test))
	}

	first := cf.Services[stiles[0]]
	for _, name := range stiles {
		s := cf.Services[name]
		e := s.Environment
		bad = append(bad, checkDatabaseURL(name, e["STILE_DATABASE"], pg, cf.Services[pg].Environment)...)
		key := s.mount(e["STILE_SECRET_FILE"])
		switch {
		case e["STILE_SECRET_FILE"] == "" || key == nil:
			bad = append(bad, fmt.Sprintf("%s: STILE_SECRET_FILE %q is not a mounted file", name, e["STILE_SECRET_FILE"]))
		case !key.ReadOnly:
			bad = append(bad, fmt.Sprintf("%s: the master key %s is not mounted read-only", name, key.Source))
		case *key != *first.mount(first.Environment["STILE_SECRET_FILE"]):
			bad = append(bad, fmt.Sprintf("%s and %s do not share the master key", stiles[0], name))
		}
		for _, k := range []string{"STILE_DATABASE", "STILE_ISSUER", "STILE_TRUSTED_PROXIES"} {
			if e[k] != first.Environment[k] {
				bad = append(bad, fmt.Sprintf("%s and %s do not share %s", stiles[0], name, k))
			}
		}
		if s.DependsOn[pg].Condition != "service_healthy" {
			bad = append(bad, fmt.Sprintf("%s: depends_on %s is not condition: service_healthy", name, pg))
		}
		if hc := s.Healthcheck; hc != nil && !slices.Equal(hc.Test, []string{"CMD", "/usr/local/bin/stile", "health"}) {
			bad = append(bad, fmt.Sprintf("%s: healthcheck %v, want [CMD /usr/local/bin/stile health]", name, hc.Test))
		}
		if cf.Services[proxy].DependsOn[name].Condition != "service_healthy" {
			bad = append(bad, fmt.Sprintf("%s: depends_on %s is not condition: service_healthy", proxy, name))
		}
	}
	bad = append(bad, checkProxy(cf, proxy, stiles)...)
	return append(bad, checkNginx(nginxConf, stiles, first.Environment["STILE_LISTEN"])...)
}

// checkDatabaseURL: the PostgreSQL service, its credentials, and no TLS,
// which the postgres image does not serve.
func checkDatabaseURL(name, raw, pg string, pgEnv map[string]string) []string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "postgres" {
		return []string{fmt.Sprintf("%s: STILE_DATABASE %q is not a postgres:// URL", name, raw)}
	}
	var bad []string
	pass, _ := u.User.Password()
	if u.Hostname() != pg || u.User.Username() != pgEnv["POSTGRES_USER"] || pass != pgEnv["POSTGRES_PASSWORD"] ||
		strings.TrimPrefix(u.Path, "/") != pgEnv["POSTGRES_DB"] {
		bad = append(bad, fmt.Sprintf("%s: STILE_DATABASE %q does not name the %s service's user, password and database", name, raw, pg))
	}
	if u.Query().Get("sslmode") != "disable" {
		bad = append(bad, fmt.Sprintf("%s: STILE_DATABASE has no sslmode=disable (the postgres image serves no TLS)", name))
	}
	return bad
}

// checkProxy: the proxy is where the issuer says, and the network it
// reaches stile on is the one stile trusts.
func checkProxy(cf *composeFile, proxy string, stiles []string) []string {
	var bad []string
	p, e := cf.Services[proxy], cf.Services[stiles[0]].Environment
	if len(p.Ports) != 1 {
		return []string{fmt.Sprintf("%s: ports %v, want the one the issuer names", proxy, p.Ports)}
	}
	parts := strings.Split(p.Ports[0], ":")
	issuer, err := url.Parse(e["STILE_ISSUER"])
	if err != nil || len(parts) < 2 || issuer.Port() != parts[len(parts)-2] || issuer.Hostname() != "localhost" {
		bad = append(bad, fmt.Sprintf("STILE_ISSUER %q is not the proxy's published address (%s)", e["STILE_ISSUER"], p.Ports[0]))
	}
	trusted, err := clientip.ParseTrusted(strings.Split(e["STILE_TRUSTED_PROXIES"], ","))
	if err != nil || len(trusted) == 0 {
		return append(bad, fmt.Sprintf("STILE_TRUSTED_PROXIES %q names no trusted proxy", e["STILE_TRUSTED_PROXIES"]))
	}
	edge := ""
	for _, n := range p.Networks {
		nw := cf.Networks[n]
		if nw == nil || len(nw.IPAM.Config) == 0 {
			continue
		}
		if slices.ContainsFunc(trusted, func(t netip.Prefix) bool { return t.String() == nw.IPAM.Config[0].Subnet }) {
			edge = n
		}
	}
	if edge == "" {
		return append(bad, fmt.Sprintf("STILE_TRUSTED_PROXIES %q is not the subnet of a network of %s", e["STILE_TRUSTED_PROXIES"], proxy))
	}
	for _, name := range stiles {
		if !slices.Contains(cf.Services[name].Networks, edge) {
			bad = append(bad, fmt.Sprintf("%s is not on %s, the proxy's network", name, edge))
		}
	}
	if m := p.mount("/etc/nginx/nginx.conf"); m == nil || !m.ReadOnly || m.Source != "./deploy/nginx.conf" {
		bad = append(bad, proxy+": ./deploy/nginx.conf is not mounted read-only at /etc/nginx/nginx.conf")
	}
	return bad
}

// checkNginx: the upstream is the two instances at the port they listen
// on, and the headers stile believes from the proxy are the proxy's own.
func checkNginx(conf string, stiles []string, listen string) []string {
	var bad []string
	var servers []string
	for _, m := range regexp.MustCompile(`(?m)^\s*server\s+([\w.-]+:\d+)`).FindAllStringSubmatch(conf, -1) {
		servers = append(servers, m[1])
	}
	var want []string
	for _, s := range stiles {
		want = append(want, net.JoinHostPort(s, listenPort(listen)))
	}
	if !slices.Equal(servers, want) {
		bad = append(bad, fmt.Sprintf("nginx.conf upstream %v, want %v", servers, want))
	}
	for _, h := range []string{`proxy_set_header X-Forwarded-For $remote_addr;`, `proxy_set_header Forwarded "";`, `proxy_set_header Host $http_host;`} {
		if !strings.Contains(conf, h) {
			bad = append(bad, "nginx.conf lacks "+h)
		}
	}
	return bad
}

// TestCompose checks compose.yaml as YAML: PostgreSQL 15, two stile
// instances sharing the database and the master key (read-only), nginx in
// front at the issuer's address, trusted proxies the proxy's network,
// health checks and depends_on service_healthy, and only variables stile
// reads. Each mutation shows a check that can fail.
func TestCompose(t *testing.T) {
	env, conf := stileEnvNames(t), readRepoFile(t, "deploy/nginx.conf")
	if bad := checkCompose(parseCompose(t), env, conf); len(bad) > 0 {
		t.Fatalf("compose.yaml:\n%s", strings.Join(bad, "\n"))
	}
	for _, m := range []struct {
		name   string
		mutate func(cf *composeFile)
		want   string
	}{
		{"other database", func(cf *composeFile) {
			cf.Services["stile-2"].Environment["STILE_DATABASE"] = "postgres://stile:stile@postgres:5432/other?sslmode=disable"
		}, "do not share STILE_DATABASE"},
		{"other key", func(cf *composeFile) { cf.Services["stile-2"].mount("/run/stile/master.key").Source = "./other.key" }, "do not share the master key"},
		{"writable key", func(cf *composeFile) { cf.Services["stile-1"].mount("/run/stile/master.key").ReadOnly = false }, "not mounted read-only"},
		{"typo", func(cf *composeFile) { cf.Services["stile-1"].Environment["STILE_TRUSTED_PROXY"] = "10.0.0.0/8" }, "reads no such variable"},
		{"no sslmode", func(cf *composeFile) {
			cf.Services["stile-1"].Environment["STILE_DATABASE"] = "postgres://stile:stile@postgres:5432/stile"
		}, "sslmode=disable"},
		{"other subnet", func(cf *composeFile) { cf.Networks["edge"].IPAM.Config[0].Subnet = "10.1.2.0/24" }, "not the subnet of a network"},
		{"no trusted proxies", func(cf *composeFile) {
			delete(cf.Services["stile-1"].Environment, "STILE_TRUSTED_PROXIES")
			delete(cf.Services["stile-2"].Environment, "STILE_TRUSTED_PROXIES")
		}, "names no trusted proxy"},
		{"issuer", func(cf *composeFile) {
			cf.Services["stile-1"].Environment["STILE_ISSUER"] = "http://localhost:9090"
			cf.Services["stile-2"].Environment["STILE_ISSUER"] = "http://localhost:9090"
		}, "not the proxy's published address"},
		{"started, not healthy", func(cf *composeFile) {
			d := cf.Services["proxy"].DependsOn["stile-2"]
			d.Condition = "service_started"
			cf.Services["proxy"].DependsOn["stile-2"] = d
		}, "proxy: depends_on stile-2"},
		{"one instance", func(cf *composeFile) { delete(cf.Services, "stile-2") }, "want two stile services"},
		{"no health check", func(cf *composeFile) { cf.Services["postgres"].Healthcheck = nil }, "postgres: no healthcheck"},
	} {
		cf := parseCompose(t)
		m.mutate(cf)
		if bad := strings.Join(checkCompose(cf, env, conf), "\n"); !strings.Contains(bad, m.want) {
			t.Errorf("%s: want a problem with %q, got:\n%s", m.name, m.want, bad)
		}
	}
	if bad := strings.Join(checkCompose(parseCompose(t), env, strings.Replace(conf, `proxy_set_header Forwarded "";`, "", 1)), "\n"); !strings.Contains(bad, "Forwarded") {
		t.Errorf("nginx.conf passing the client's Forwarded header on passed:\n%s", bad)
	}
}

// TestNginxConfig has nginx check deploy/nginx.conf. nginx resolves the
// upstream's names when it reads the file, and compose's names exist only
// on the compose network, so they become 127.0.0.1 here; everything else
// is the committed file. A broken copy shows the check can fail.
func TestNginxConfig(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Fatal("nginx is needed to check deploy/nginx.conf: apt-get install nginx-light")
	}
	conf := readRepoFile(t, "deploy/nginx.conf")
	local := regexp.MustCompile(`(?m)^(\s*server\s+)stile-\d+(:\d+)`).ReplaceAllString(conf, "${1}127.0.0.1$2")
	if local == conf {
		t.Fatal("deploy/nginx.conf names no stile-N upstream")
	}
	check := func(conf string) (string, error) {
		dir := t.TempDir()
		path := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(nginx, "-t", "-q", "-e", "stderr", "-p", dir, "-c", path).CombinedOutput()
		return string(out), err
	}
	if out, err := check(local); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	if out, err := check(strings.Replace(local, "proxy_pass http://stile;", "proxy_pass http://stile", 1)); err == nil {
		t.Fatalf("nginx -t passed a broken file:\n%s", out)
	}
}
