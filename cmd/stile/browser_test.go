package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// browser acts as a person's browser against stile: it keeps cookies,
// follows redirects within stile, and fills in and submits HTML forms. A
// redirect away from stile (to a client's redirect URI) is not followed:
// the test reads the code off it.
type browser struct {
	t        *testing.T
	c        *http.Client
	host     string
	noFollow bool // stop at every redirect, even within stile
}

func newBrowser(t *testing.T, s *server) *browser {
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(s.URL)
	b := &browser{t: t, host: u.Host}
	b.c = &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if b.noFollow || req.URL.Host != b.host || len(via) > 10 {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

// page is a response as the browser saw it.
type page struct {
	status int
	url    *url.URL
	header http.Header
	body   string
}

func (b *browser) do(req *http.Request) *page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return &page{status: resp.StatusCode, url: resp.Request.URL, header: resp.Header, body: string(body)}
}

func (b *browser) get(rawURL string) *page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// post sends a form as the browser would, with extra headers if given.
func (b *browser) post(rawURL string, form url.Values, headers ...string) *page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return b.do(req)
}

// submit fills the page's form with fields (over its hidden inputs) and
// submits it to the form's action.
func (b *browser) submit(p *page, fields map[string]string) *page {
	b.t.Helper()
	action, values := p.form(b.t)
	for k, v := range fields {
		values.Set(k, v)
	}
	return b.post(p.url.ResolveReference(action).String(), values)
}

// form parses the page's first form: its action and its inputs' values.
func (p *page) form(t *testing.T) (*url.URL, url.Values) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(p.body))
	if err != nil {
		t.Fatalf("parse %s: %v", p.url, err)
	}
	var action *url.URL
	values := url.Values{}
	var walk func(n *html.Node, inForm bool)
	walk = func(n *html.Node, inForm bool) {
		if n.Type == html.ElementNode && n.Data == "form" {
			if action != nil {
				return // only the first form
			}
			action, _ = url.Parse(attr(n, "action"))
			inForm = true
		}
		if inForm && n.Type == html.ElementNode && n.Data == "input" && attr(n, "name") != "" {
			values.Set(attr(n, "name"), attr(n, "value"))
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inForm)
		}
	}
	walk(doc, false)
	if action == nil {
		t.Fatalf("no form on %s (status %d):\n%s", p.url, p.status, p.body)
	}
	return action, values
}

// link returns the target of the page's link with this text.
func (p *page) link(t *testing.T, text string) *url.URL {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(p.body))
	if err != nil {
		t.Fatalf("parse %s: %v", p.url, err)
	}
	var found *url.URL
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "a" && n.FirstChild != nil && strings.TrimSpace(n.FirstChild.Data) == text {
			found, _ = url.Parse(attr(n, "href"))
		}
		for c := n.FirstChild; c != nil && found == nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if found == nil {
		t.Fatalf("no link %q on %s:\n%s", text, p.url, p.body)
	}
	return found
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// location is where a stopped redirect pointed.
func (p *page) location(t *testing.T) *url.URL {
	t.Helper()
	loc := p.header.Get("Location")
	if loc == "" {
		t.Fatalf("expected a redirect from %s, got status %d:\n%s", p.url, p.status, p.body)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// cookie returns the browser's cookie of that name for stile, or nil.
func (b *browser) cookie(name string) *http.Cookie {
	for _, c := range b.c.Jar.Cookies(&url.URL{Scheme: "http", Host: b.host, Path: "/"}) {
		if c.Name == name {
			return c
		}
	}
	return nil
}
