package main

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stile-id/stile/conformance"
)

// browser acts as a person's browser against stile: the conformance
// suite's browser (cookie jar, redirects, HTML forms), failing the test on
// any transport error. It follows redirects within stile and stops at
// https redirects away from it (the test servers speak http), where the
// test reads the code off the client's redirect URI.
type browser struct {
	t        *testing.T
	b        *conformance.Browser
	url      string
	noFollow bool // stop at every redirect, even within stile
}

func newBrowser(t *testing.T, s *server) *browser {
	return &browser{t: t, b: conformance.NewBrowser(nil, "https://"), url: s.URL}
}

// page is a response as the browser saw it.
type page struct {
	*conformance.Page
	status int
	url    *url.URL
	header http.Header
	body   string
}

func (b *browser) wrap(p *conformance.Page, err error) *page {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
	return &page{Page: p, status: p.Status, url: p.URL, header: p.Header, body: p.Body}
}

func (b *browser) get(rawURL string) *page {
	b.t.Helper()
	b.b.NoFollow = b.noFollow
	return b.wrap(b.b.Get(rawURL))
}

// post sends a form as the browser would, with extra headers if given.
func (b *browser) post(rawURL string, form url.Values, headers ...string) *page {
	b.t.Helper()
	b.b.NoFollow = b.noFollow
	return b.wrap(b.b.Post(rawURL, form, headers...))
}

// submit fills the page's form with fields (over its hidden inputs) and
// submits it to the form's action.
func (b *browser) submit(p *page, fields map[string]string) *page {
	b.t.Helper()
	b.b.NoFollow = b.noFollow
	return b.wrap(b.b.Submit(p.Page, fields))
}

// form parses the page's first form: its action and its inputs' values.
func (p *page) form(t *testing.T) (*url.URL, url.Values) {
	t.Helper()
	f, ok := p.Form()
	if !ok {
		t.Fatalf("no form on %s (status %d):\n%s", p.url, p.status, p.body)
	}
	return f.Action, f.Values
}

// link returns the target of the page's link with this text.
func (p *page) link(t *testing.T, text string) *url.URL {
	t.Helper()
	u, ok := p.Link(text)
	if !ok {
		t.Fatalf("no link %q on %s:\n%s", text, p.url, p.body)
	}
	return u
}

// location is where a stopped redirect pointed.
func (p *page) location(t *testing.T) *url.URL {
	t.Helper()
	u := p.Location()
	if u == nil {
		t.Fatalf("expected a redirect from %s, got status %d:\n%s", p.url, p.status, p.body)
	}
	return u
}

// cookie returns the browser's cookie of that name for stile, or nil.
func (b *browser) cookie(name string) *http.Cookie { return b.b.Cookie(b.url, name) }
