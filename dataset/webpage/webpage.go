// Package webpage reads web pages for knowledge-base link collections
// (POST /api/core/dataset/collection/create/link): a dataset.PageFetcher
// that fetches through chatgate's outbound guard, which refuses internal
// addresses (loopback, private, link-local, reserved) unless the operator
// allow-lists them, with limits on the page's size and the time it takes,
// and extracts the main text with go-readability, or the text of what a
// CSS selector matches with goquery. It is a package of its own so that
// a program importing dataset alone links no HTML parser.
package webpage

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"codeberg.org/readeck/go-readability/v2"
	"codeberg.org/readeck/go-readability/v2/render"
	"github.com/PuerkitoBio/goquery"
	"github.com/andybalholm/cascadia"
	"golang.org/x/net/html"
	"golang.org/x/net/html/charset"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/internal/outbound"
)

// Options configures a Fetcher. The zero value refuses every internal
// address and reads at most 5 MiB in at most 15 s, following up to 5
// redirects.
type Options struct {
	// AllowHosts opens internal hosts: CIDRs or addresses ("10.1.0.0/16",
	// "127.0.0.1") permit those addresses whatever name led there, host
	// names ("wiki.internal") that name whatever it resolves to.
	AllowHosts []string
	// MaxBytes bounds a page's body; default 5 MiB.
	MaxBytes int64
	// Timeout bounds a whole fetch, redirects included; default 15 s.
	Timeout time.Duration
	// MaxRedirects is how many redirects are followed, each dialled
	// through the guard like the first; default 5, negative: none.
	MaxRedirects int
}

// Fetcher reads web pages' text; it implements dataset.PageFetcher.
type Fetcher struct {
	client  *outbound.Client
	allow   outbound.AllowList
	timeout time.Duration
	max     int64
}

var _ dataset.PageFetcher = (*Fetcher)(nil)

// New returns a Fetcher for opts; the error names a bad AllowHosts entry.
func New(opts Options) (*Fetcher, error) {
	allow, err := outbound.ParseAllowList(opts.AllowHosts)
	if err != nil {
		return nil, fmt.Errorf("webpage: %w", err)
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 5 << 20
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 15 * time.Second
	}
	switch {
	case opts.MaxRedirects == 0:
		opts.MaxRedirects = 5
	case opts.MaxRedirects < 0:
		opts.MaxRedirects = 0
	}
	c := outbound.New(outbound.Options{Allow: allow, MaxBodyBytes: opts.MaxBytes, Timeout: opts.Timeout,
		MaxRedirects: opts.MaxRedirects, DialTimeout: opts.Timeout})
	return &Fetcher{client: c, allow: allow, timeout: opts.Timeout, max: opts.MaxBytes}, nil
}

const linkField = "link"

func refused(format string, args ...any) error {
	return dataset.ErrLinkRefused.WithMessage("invalid field %q: %s", linkField, fmt.Sprintf(format, args...))
}

func unreachable(format string, args ...any) error {
	return dataset.ErrLinkUnreachable.WithMessage("invalid field %q: %s", linkField, fmt.Sprintf(format, args...))
}

// FetchText implements dataset.PageFetcher: it GETs link and returns the
// page's title and its main text (the readable article, or the whole body
// when go-readability finds none), or with a selector the text of every
// element it matches, in order. Its errors are dataset.ErrLinkRefused (a
// 400: not an http(s) URL, an internal address, too large, not HTML, no
// text, a bad or unmatched selector) and dataset.ErrLinkUnreachable (a
// 502: no connection, an answer not a 2xx, too slow), each naming link.
func (f *Fetcher) FetchText(ctx context.Context, link, selector string) (title, text string, err error) {
	u, err := f.checkURL(link)
	if err != nil {
		return "", "", err
	}
	var match cascadia.Selector
	if selector != "" {
		if match, err = cascadia.Compile(selector); err != nil {
			return "", "", apierror.InvalidRequest("metadata.webPageSelector", "is not a CSS selector: %v", err)
		}
	}
	resp, err := f.client.Fetch(ctx, u.String(), "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1")
	if err != nil {
		return "", "", f.fetchError(ctx, err)
	}
	ctype := resp.Header.Get("Content-Type")
	if ctype == "" {
		ctype = http.DetectContentType(resp.Body)
	}
	if mt, _, _ := mime.ParseMediaType(ctype); mt != "text/html" && mt != "application/xhtml+xml" {
		return "", "", refused("the page is %q, not HTML", cmp.Or(mt, ctype))
	}
	body, err := charset.NewReader(bytes.NewReader(resp.Body), ctype)
	if err != nil {
		return "", "", refused("the page's charset cannot be read: %v", err)
	}
	root, err := html.Parse(body)
	if err != nil {
		return "", "", refused("the page is not HTML: %v", err)
	}
	doc := goquery.NewDocumentFromNode(root)
	title = strings.TrimSpace(doc.Find("title").First().Text())
	if match != nil {
		sel := doc.FindMatcher(match)
		if sel.Length() == 0 {
			return "", "", apierror.InvalidRequest("metadata.webPageSelector", "matches nothing on the page")
		}
		var parts []string
		sel.Each(func(_ int, s *goquery.Selection) {
			if t := strings.TrimSpace(render.InnerText(s.Get(0))); t != "" {
				parts = append(parts, t)
			}
		})
		text = strings.Join(parts, "\n\n")
	} else {
		text, title = mainText(root, resp.URL, title)
	}
	if strings.TrimSpace(text) == "" {
		return "", "", refused("the page has no text")
	}
	return title, text, nil
}

// mainText is the readable article of the page and its title; the
// text of the whole body when readability finds no article.
func mainText(root *html.Node, pageURL, title string) (string, string) {
	u, _ := url.Parse(pageURL)
	// readability changes the tree it reads: it gets a copy, so that the
	// body is still whole for the fallback
	art, err := readability.FromDocument(clone(root), u)
	if err == nil && art.Node != nil {
		if t := strings.TrimSpace(render.InnerText(art.Node)); t != "" {
			return t, cmp.Or(strings.TrimSpace(art.Title()), title)
		}
	}
	body := goquery.NewDocumentFromNode(root).Find("body")
	if body.Length() == 0 {
		return "", title
	}
	body.Find("script, style, noscript, template").Remove()
	return strings.TrimSpace(render.InnerText(body.Get(0))), title
}

// clone deep-copies an HTML tree.
func clone(n *html.Node) *html.Node {
	c := &html.Node{Type: n.Type, DataAtom: n.DataAtom, Data: n.Data, Namespace: n.Namespace,
		Attr: append([]html.Attribute(nil), n.Attr...)}
	for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
		c.AppendChild(clone(ch))
	}
	return c
}

// checkURL refuses, before any call, what is not an http(s) URL to a host
// by name or by an address the guard permits.
func (f *Fetcher) checkURL(link string) (*url.URL, error) {
	u, err := url.Parse(link)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return nil, refused("must be an http(s) URL")
	}
	if u.User != nil {
		return nil, refused("must not carry a user or password")
	}
	if u.Port() == "0" {
		return nil, refused("must not name port 0")
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		if !f.allow.Permits(a) {
			return nil, refused("names %s, an internal address (loopback, private, link-local or reserved) the server does not allow; the operator may list it in dataset.link.allow_hosts", a.WithZone(""))
		}
	} else if !outbound.ValidHost(host) {
		return nil, refused("must name a host by a DNS name or a standard IP address")
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// fetchError is the answer for a failed fetch.
func (f *Fetcher) fetchError(ctx context.Context, err error) error {
	var (
		be *outbound.BlockedError
		se *outbound.StatusError
	)
	switch {
	case errors.As(err, &be):
		return refused("reaches %s, an internal address (loopback, private, link-local or reserved) the server does not allow; the operator may list it in dataset.link.allow_hosts", be.Addr)
	case errors.Is(err, outbound.ErrBlocked):
		return refused("reaches an internal address the server does not allow")
	case errors.Is(err, outbound.ErrTooLarge):
		return refused("the page is larger than %d bytes", f.max)
	case errors.As(err, &se):
		return unreachable("the page answered HTTP %d", se.Code)
	case ctx.Err() != nil:
		return ctx.Err() // the caller went away: nobody to answer
	case errors.Is(err, context.DeadlineExceeded):
		return unreachable("the page did not answer within %v", f.timeout)
	}
	return unreachable("the page could not be fetched: %v", err)
}
