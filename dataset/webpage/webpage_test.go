package webpage_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/webpage"
)

// Paragraphs long enough for readability to take the article as the
// page's content.
var paragraphs = []string{
	"FastGPT is a knowledge-based question answering system built on large language models. It offers data processing, model invocation and visual workflow orchestration out of the box, so that complex question answering scenarios can be built quickly.",
	"To start, create a knowledge base, import documents into it as collections, and wait for the training queue to embed every chunk. Each collection keeps the source it was read from, such as the web page's link.",
	"Then create an application, bind the knowledge base to it, and ask a question: the answer quotes the chunks that the search found, with their scores, so that the reader can check where it came from.",
}

const navText = "Home | Pricing | Login"
const footerText = "Copyright footer text"

func articlePage() string {
	var b strings.Builder
	b.WriteString(`<!doctype html><html><head><title>Quick start | FastGPT</title><script>var tracking = "script text";</script></head><body>`)
	b.WriteString(`<nav><a href="/">Home</a> | <a href="/p">Pricing</a> | <a href="/l">Login</a></nav>`)
	b.WriteString(`<div class="sidebar"><ul><li><a href="/a">Related one</a></li><li><a href="/b">Related two</a></li></ul></div>`)
	b.WriteString(`<article><h1>Quick start</h1>`)
	for _, p := range paragraphs {
		b.WriteString("<p>" + p + "</p>")
	}
	b.WriteString(`</article><footer>` + footerText + `</footer></body></html>`)
	return b.String()
}

// site serves the test's pages on loopback and counts the requests.
func site(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	reqs := new(atomic.Int32)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs.Add(1)
		switch r.URL.Path {
		case "/article":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte(articlePage()))
		case "/docs":
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte(`<html><head><title>Docs</title></head><body><div class="menu">Menu entries</div>` +
				`<div class="docs-content"><h2>First</h2><p>Alpha paragraph.</p></div><aside>Aside text</aside>` +
				`<div class="docs-content"><p>Beta paragraph.</p></div></body></html>`))
		case "/gbk":
			enc, _ := simplifiedchinese.GBK.NewEncoder().String(`<html><head><title>快速上手</title></head><body><div id="main"><p>知识库是一个基于大模型的问答系统。</p></div></body></html>`)
			w.Header().Set("Content-Type", "text/html; charset=gbk")
			w.Write([]byte(enc))
		case "/untyped": // no Content-Type: sniffed
			w.Header()["Content-Type"] = nil
			w.Write([]byte(`<!DOCTYPE html><html><body><p>Sniffed page text.</p></body></html>`))
		case "/json":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"a":1}`))
		case "/empty":
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte(`<html><head><title>Empty</title></head><body><script>x()</script></body></html>`))
		case "/big":
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html><body><p>" + strings.Repeat("x", 2048) + "</p></body></html>"))
		case "/away": // to the same server by its address
			http.Redirect(w, r, "http://"+r.Context().Value(http.LocalAddrContextKey).(net.Addr).String()+"/article", http.StatusFound)
		case "/moved":
			http.Redirect(w, r, "/article", http.StatusMovedPermanently)
		case "/hang":
			w.Header().Set("Content-Type", "text/html")
			w.(http.Flusher).Flush()
			<-release
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // before srv.Close, which waits for /hang
	return srv, reqs
}

func allowed(t *testing.T, opts webpage.Options) *webpage.Fetcher {
	t.Helper()
	opts.AllowHosts = append(opts.AllowHosts, "127.0.0.1/32")
	f, err := webpage.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFetchTextReadsTheArticle(t *testing.T) {
	srv, _ := site(t)
	f := allowed(t, webpage.Options{})
	for _, path := range []string{"/article", "/moved"} {
		title, text, err := f.FetchText(context.Background(), srv.URL+path, "")
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if title != "Quick start | FastGPT" {
			t.Errorf("%s: title %q", path, title)
		}
		for _, p := range paragraphs {
			if !strings.Contains(text, p) {
				t.Errorf("%s: text lacks %q:\n%s", path, p[:30], text)
			}
		}
		for _, junk := range []string{"Pricing", footerText, "script text", "Related one"} {
			if strings.Contains(text, junk) {
				t.Errorf("%s: text holds %q, not the article's:\n%s", path, junk, text)
			}
		}
		// paragraphs stay apart, for the splitter to cut at
		if !strings.Contains(text, paragraphs[0]+"\n\n"+paragraphs[1]) {
			t.Errorf("%s: paragraphs not separated by a blank line:\n%q", path, text)
		}
	}
}

func TestFetchTextSelector(t *testing.T) {
	srv, _ := site(t)
	f := allowed(t, webpage.Options{})
	title, text, err := f.FetchText(context.Background(), srv.URL+"/docs", ".docs-content")
	if err != nil {
		t.Fatal(err)
	}
	if title != "Docs" || text != "First\n\nAlpha paragraph.\n\nBeta paragraph." {
		t.Fatalf("title %q, text %q", title, text)
	}
	for sel, want := range map[string]string{"div[": "is not a CSS selector", ".nothing": "matches nothing"} {
		_, _, err := f.FetchText(context.Background(), srv.URL+"/docs", sel)
		var ae *apierror.Error
		if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Message, `"metadata.webPageSelector"`) || !strings.Contains(ae.Message, want) {
			t.Errorf("selector %q: %v", sel, err)
		}
	}
}

func TestFetchTextCharsetAndSniffing(t *testing.T) {
	srv, _ := site(t)
	f := allowed(t, webpage.Options{})
	title, text, err := f.FetchText(context.Background(), srv.URL+"/gbk", "#main")
	if err != nil || title != "快速上手" || text != "知识库是一个基于大模型的问答系统。" {
		t.Fatalf("gbk: %q %q %v", title, text, err)
	}
	if _, text, err := f.FetchText(context.Background(), srv.URL+"/untyped", ""); err != nil || text != "Sniffed page text." {
		t.Fatalf("untyped: %q %v", text, err)
	}
}

// wantLinkError checks an error is the sentinel, with the status, naming
// link and saying why.
func wantLinkError(t *testing.T, what string, err, sentinel error, status int, why string) {
	t.Helper()
	var ae *apierror.Error
	if !errors.Is(err, sentinel) || !errors.As(err, &ae) || ae.Status != status || !strings.Contains(ae.Message, `"link"`) || !strings.Contains(ae.Message, why) {
		t.Errorf("%s: %v; want %d naming link and saying %q", what, err, status, why)
	}
}

func TestFetchTextFailures(t *testing.T) {
	srv, reqs := site(t)
	f := allowed(t, webpage.Options{MaxBytes: 1024, Timeout: 300 * time.Millisecond})
	ctx := context.Background()
	for _, c := range []struct {
		path     string
		sentinel error
		status   int
		why      string
	}{
		{"/json", dataset.ErrLinkRefused, 400, `"application/json", not HTML`},
		{"/empty", dataset.ErrLinkRefused, 400, "no text"},
		{"/big", dataset.ErrLinkRefused, 400, "larger than 1024 bytes"},
		{"/missing", dataset.ErrLinkUnreachable, 502, "HTTP 404"},
		{"/hang", dataset.ErrLinkUnreachable, 502, "did not answer within 300ms"},
	} {
		_, _, err := f.FetchText(ctx, srv.URL+c.path, "")
		wantLinkError(t, c.path, err, c.sentinel, c.status, c.why)
	}
	// nothing listens there: unreachable
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := "http://" + ln.Addr().String() + "/"
	ln.Close()
	_, _, err := f.FetchText(ctx, closed, "")
	wantLinkError(t, "closed port", err, dataset.ErrLinkUnreachable, 502, "could not be fetched")

	before := reqs.Load()
	for _, bad := range []string{"ftp://example.com/x", "example.com", "http://user:pw@example.com/", "http://example.com:0/", "http://127.1/"} {
		_, _, err := f.FetchText(ctx, bad, "")
		wantLinkError(t, bad, err, dataset.ErrLinkRefused, 400, "")
	}
	if reqs.Load() != before {
		t.Fatalf("refused links reached the server")
	}
}

// The same loopback page that the allow-listed fetcher reads is refused
// when it is not listed: by address, by a name that resolves to it, and by
// a redirect to it; no connection reaches it.
func TestFetchTextRefusesInternalAddressesNotListed(t *testing.T) {
	srv, reqs := site(t)
	if _, _, err := allowed(t, webpage.Options{}).FetchText(context.Background(), srv.URL+"/article", ""); err != nil {
		t.Fatalf("allow-listed: %v", err)
	}
	reqs.Store(0)
	f, err := webpage.New(webpage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)
	for _, link := range []string{
		srv.URL + "/article",                    // by address: refused before any dial
		"http://localhost:" + port + "/article", // by name: refused at connect
		"http://[::ffff:127.0.0.1]:" + port + "/article",
		"http://169.254.169.254/latest/meta-data", "http://10.0.0.1/", "http://[fe80::1]/",
	} {
		_, _, err := f.FetchText(context.Background(), link, "")
		wantLinkError(t, link, err, dataset.ErrLinkRefused, 400, "internal address")
	}
	if n := reqs.Load(); n != 0 {
		t.Fatalf("refused fetches reached the page: %d requests", n)
	}
	// a listed name's page that redirects to an address not listed
	byName, _ := webpage.New(webpage.Options{AllowHosts: []string{"localhost"}})
	_, _, err = byName.FetchText(context.Background(), "http://localhost:"+port+"/away", "")
	wantLinkError(t, "redirect to 127.0.0.1", err, dataset.ErrLinkRefused, 400, "internal address")
	if n := reqs.Load(); n != 1 {
		t.Fatalf("the listed name's page got %d requests; want 1, and none after its redirect", n)
	}
}

func TestNewRefusesABadAllowList(t *testing.T) {
	if _, err := webpage.New(webpage.Options{AllowHosts: []string{"10.0.0.0/8", "http://x"}}); err == nil || !strings.Contains(err.Error(), "entry 1") {
		t.Fatalf("err = %v", err)
	}
}
