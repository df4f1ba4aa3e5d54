package conformance

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"

	"golang.org/x/net/html"
)

// Browser acts as a user's browser: it keeps cookies, follows redirects,
// and fills in and submits HTML forms. It stops at a redirect whose target
// starts with one of StopAt (a client's redirect URI), where the client
// would take over, or at any redirect when NoFollow is set.
type Browser struct {
	StopAt   []string
	NoFollow bool
	client   *http.Client
}

// NewBrowser returns a browser with an empty cookie jar. transport may be
// nil for http.DefaultTransport.
func NewBrowser(transport http.RoundTripper, stopAt ...string) *Browser {
	jar, _ := cookiejar.New(nil)
	b := &Browser{StopAt: stopAt}
	b.client = &http.Client{Jar: jar, Transport: transport, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if b.NoFollow || b.stops(req.URL.String()) || len(via) > 20 {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

func (b *Browser) stops(target string) bool {
	for _, p := range b.StopAt {
		if strings.HasPrefix(target, p) {
			return true
		}
	}
	return false
}

// Page is a response as the browser saw it.
type Page struct {
	Status int
	URL    *url.URL // where the response came from
	Header http.Header
	Body   string
}

// Location is where a stopped redirect pointed, or nil.
func (p *Page) Location() *url.URL {
	loc := p.Header.Get("Location")
	if loc == "" {
		return nil
	}
	u, err := p.URL.Parse(loc)
	if err != nil {
		return nil
	}
	return u
}

// Do sends a request as the browser.
func (b *Browser) Do(req *http.Request) (*Page, error) {
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", req.URL.Redacted(), err)
	}
	return &Page{Status: resp.StatusCode, URL: resp.Request.URL, Header: resp.Header, Body: string(body)}, nil
}

// Get fetches a URL.
func (b *Browser) Get(rawURL string) (*Page, error) {
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	return b.Do(req)
}

// Post submits a form, with extra headers given as name, value pairs.
func (b *Browser) Post(rawURL string, form url.Values, headers ...string) (*Page, error) {
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return b.Do(req)
}

// Submit fills the page's first form with fields (over the values of its
// inputs) and submits it.
func (b *Browser) Submit(p *Page, fields map[string]string) (*Page, error) {
	f, ok := p.Form()
	if !ok {
		return nil, fmt.Errorf("no form on %s (status %d)", p.URL.Redacted(), p.Status)
	}
	for k, v := range fields {
		f.Values.Set(k, v)
	}
	target := p.URL.ResolveReference(f.Action).String()
	if strings.EqualFold(f.Method, http.MethodGet) {
		u, _ := url.Parse(target)
		u.RawQuery = f.Values.Encode()
		return b.Get(u.String())
	}
	return b.Post(target, f.Values)
}

// Cookie returns the browser's cookie of that name for rawURL, or nil.
func (b *Browser) Cookie(rawURL, name string) *http.Cookie {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil
	}
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Form is an HTML form: where it goes and what it would send.
type Form struct {
	Action *url.URL
	Method string
	Values url.Values
	Fields []string // the names of its inputs, in order
}

// Has reports whether the form has an input or button named name.
func (f *Form) Has(name string) bool {
	for _, n := range f.Fields {
		if n == name {
			return true
		}
	}
	return false
}

// Form parses the page's first form.
func (p *Page) Form() (*Form, bool) {
	forms := p.Forms()
	if len(forms) == 0 {
		return nil, false
	}
	return forms[0], true
}

// Forms parses the page's forms, in order.
func (p *Page) Forms() []*Form {
	doc, err := html.Parse(strings.NewReader(p.Body))
	if err != nil {
		return nil
	}
	var forms []*Form
	var walk func(n *html.Node, f *Form)
	walk = func(n *html.Node, f *Form) {
		if n.Type == html.ElementNode && n.Data == "form" {
			action, _ := url.Parse(attr(n, "action"))
			f = &Form{Action: action, Method: attr(n, "method"), Values: url.Values{}}
			forms = append(forms, f)
		}
		if f != nil && n.Type == html.ElementNode && (n.Data == "input" || n.Data == "button") && attr(n, "name") != "" {
			name := attr(n, "name")
			f.Fields = append(f.Fields, name)
			if n.Data == "input" && !f.Values.Has(name) {
				f.Values.Set(name, attr(n, "value"))
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, f)
		}
	}
	walk(doc, nil)
	return forms
}

// Link returns the target of the page's first link whose text is text.
func (p *Page) Link(text string) (*url.URL, bool) {
	doc, err := html.Parse(strings.NewReader(p.Body))
	if err != nil {
		return nil, false
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
	return found, found != nil
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}
