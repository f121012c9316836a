// Package outbound is chatgate's way out to hosts a user names: share
// links' auth hooks, web pages imported into a knowledge base. Such a host
// must not become a way into the network chatgate runs in, so a Client
// refuses internal addresses (loopback, private, link-local, reserved)
// unless the operator's AllowList names them. The check is made on the
// address actually dialled, in the dialer's Control, so a name that
// resolves (or later rebinds) to one is refused too; proxy variables are
// ignored, since a proxy would dial the internal address for us.
//
// Fetch adds what a caller reading a page needs besides: a bound on the
// body it reads and on the whole exchange.
package outbound

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrBlocked is the cause when the guard refuses to dial an address; a
// refused dial's error wraps it (as a *BlockedError naming the address).
var ErrBlocked = errors.New("the address is internal and not on the allow-list")

// BlockedError names the address refused.
type BlockedError struct{ Addr netip.Addr }

// Error names the refused address.
func (e *BlockedError) Error() string { return fmt.Sprintf("%v: %s", ErrBlocked, e.Addr) }

// Unwrap returns ErrBlocked.
func (e *BlockedError) Unwrap() error { return ErrBlocked }

// ErrTooLarge is Fetch's error for a body longer than MaxBodyBytes.
var ErrTooLarge = errors.New("the answer is larger than the limit")

// StatusError is Fetch's error for an answer that is not a 2xx.
type StatusError struct{ Code int }

// Error names the status the server answered.
func (e *StatusError) Error() string { return fmt.Sprintf("answered HTTP %d", e.Code) }

// Options configures a Client. The zero value refuses every internal
// address, follows no redirect, and bounds Fetch to 5 MiB and 15 s.
type Options struct {
	Allow AllowList
	// DialTimeout bounds one connect; default 30 s.
	DialTimeout time.Duration
	// MaxIdleConnsPerHost is the transport's; default 16.
	MaxIdleConnsPerHost int
	// MaxRedirects is how many redirects are followed; 0: none, and a 3xx
	// is answered as it is (Fetch then fails with a StatusError). Each hop
	// is dialled through the guard like the first.
	MaxRedirects int
	// MaxBodyBytes bounds the body Fetch reads; default 5 MiB.
	MaxBodyBytes int64
	// Timeout bounds a whole Fetch, connect to last byte; default 15 s.
	// HTTP's client has none: its callers bound each call with a context.
	Timeout time.Duration
}

// Client is an HTTP client that dials only what its AllowList permits.
type Client struct {
	http *http.Client
	opts Options
}

// New returns a Client for opts.
func New(opts Options) *Client {
	opts.DialTimeout = or(opts.DialTimeout, 30*time.Second)
	opts.Timeout = or(opts.Timeout, 15*time.Second)
	opts.MaxBodyBytes = or(opts.MaxBodyBytes, 5<<20)
	opts.MaxIdleConnsPerHost = or(opts.MaxIdleConnsPerHost, 16)
	g := &dialGuard{allow: opts.Allow,
		open: net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}}
	g.guarded = g.open
	g.guarded.Control = g.control
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = g.dialContext
	tr.MaxIdleConnsPerHost = opts.MaxIdleConnsPerHost
	c := &http.Client{Transport: tr, CheckRedirect: NoRedirects}
	if opts.MaxRedirects > 0 {
		c.CheckRedirect = func(_ *http.Request, via []*http.Request) error {
			if len(via) > opts.MaxRedirects {
				return fmt.Errorf("stopped after %d redirects", opts.MaxRedirects)
			}
			return nil
		}
	}
	return &Client{http: c, opts: opts}
}

func or[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// NoRedirects is a CheckRedirect that follows none: the 3xx is the answer.
func NoRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// HTTP returns the guarded *http.Client, without Fetch's limits: for
// callers that bound each call themselves.
func (c *Client) HTTP() *http.Client { return c.http }

// Response is what Fetch read: the final URL (after redirects), the
// headers and the whole body.
type Response struct {
	URL    string
	Header http.Header
	Body   []byte
}

// Fetch GETs url with accept as its Accept header, within Timeout, and
// reads a body of at most MaxBodyBytes. Its errors wrap ErrBlocked for an
// internal address, ErrTooLarge (also when Content-Length says so, before
// any of the body is read), *StatusError for an answer not a 2xx, and
// context.DeadlineExceeded when the time ran out.
func (c *Client) Fetch(ctx context.Context, url, accept string) (*Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, &StatusError{Code: resp.StatusCode}
	}
	if resp.ContentLength > c.opts.MaxBodyBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrTooLarge, resp.ContentLength, c.opts.MaxBodyBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.opts.MaxBodyBytes+1))
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		return nil, err
	}
	if int64(len(body)) > c.opts.MaxBodyBytes {
		return nil, fmt.Errorf("%w of %d bytes", ErrTooLarge, c.opts.MaxBodyBytes)
	}
	return &Response{URL: resp.Request.URL.String(), Header: resp.Header, Body: body}, nil
}

// dialGuard dials through one of two dialers: open for host names on the
// allow-list, guarded, which checks each resolved address just before
// connecting to it, for everything else.
type dialGuard struct {
	allow         AllowList
	open, guarded net.Dialer
}

func (g *dialGuard) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if g.allow.AllowsHost(host) {
		return g.open.DialContext(ctx, network, addr)
	}
	return g.guarded.DialContext(ctx, network, addr)
}

// control runs after the socket is made and before connect, with the
// address resolved: the one place DNS rebinding cannot slip past.
func (g *dialGuard) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot read %q", ErrBlocked, address)
	}
	if !g.allow.Permits(ap.Addr()) {
		return &BlockedError{Addr: ap.Addr().WithZone("")}
	}
	return nil
}
