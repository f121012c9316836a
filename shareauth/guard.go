package shareauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/chatgate/chatgate/apierror"
)

// A link's hookUrl is chosen by any team admin and called by any visitor
// without a key, so it must not become a way into the network chatgate runs
// in: the default client refuses internal addresses (checked on the address
// actually dialled, so a name that resolves, or later rebinds, to one is
// refused too), never follows redirects and ignores proxy variables.

// errBlockedAddress is the cause when the guard refuses to dial an
// address. Callers never get it (a visitor gets ErrHookFailed, the
// operator CauseBlocked and the log), so it is not exported.
var errBlockedAddress = errors.New("shareauth: the auth host's address is internal and not allowed")

// blockedError names the address refused.
type blockedError struct{ addr netip.Addr }

func (e *blockedError) Error() string { return fmt.Sprintf("%v: %s", errBlockedAddress, e.addr) }
func (e *blockedError) Unwrap() error { return errBlockedAddress }

// blockedPrefixes are the ranges the guard refuses besides what netip's
// predicates cover: networks that are not the public internet, or that
// reach it only through a gateway of the local network.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT, shared address space
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and 255.255.255.255 broadcast
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated), :: and ::1
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local, still routed by some stacks
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96") // well-known NAT64: the low 32 bits are an IPv4 address
	sixToFour = netip.MustParsePrefix("2002::/16")    // 6to4: bits 16-48 are an IPv4 address
)

// blocked reports whether the default client refuses to dial a: loopback,
// private (RFC 1918, fc00::/7), link-local, multicast, unspecified, CGNAT,
// 0.0.0.0/8, broadcast and the other special-purpose ranges, in IPv4 or any
// IPv6 form that carries an IPv4 address (mapped, NAT64, 6to4).
func blocked(a netip.Addr) bool {
	a = a.WithZone("").Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsMulticast() ||
		a.IsUnspecified() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() {
		return true
	}
	for _, p := range blockedPrefixes {
		if p.Contains(a) {
			return true
		}
	}
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64.Contains(a):
			return blocked(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(a):
			return blocked(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	return false
}

// AllowList opens internal auth hosts to the default client: the operator's
// exception to the blocked ranges. Its zero value allows nothing.
type AllowList struct {
	prefixes []netip.Prefix
	hosts    map[string]bool
}

// ParseAllowList reads entries, each a CIDR ("10.1.0.0/16"), an IP address
// (one host) or a host name ("auth.internal"). A CIDR or address permits
// those resolved addresses, whatever name led there; a host name permits
// that name (and only it) whatever it resolves to. The error names the
// entry.
func ParseAllowList(entries []string) (AllowList, error) {
	var al AllowList
	for i, e := range entries {
		s := strings.TrimSpace(e)
		if p, err := netip.ParsePrefix(s); err == nil {
			al.prefixes = append(al.prefixes, unmapPrefix(p))
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			a = a.Unmap()
			al.prefixes = append(al.prefixes, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		h := normalHost(s)
		if !validHostName(h) || numericHost(h) {
			return AllowList{}, fmt.Errorf("shareauth: allow-list entry %d (%q) is not a CIDR, an IP address or a host name", i, e)
		}
		if al.hosts == nil {
			al.hosts = map[string]bool{}
		}
		al.hosts[h] = true
	}
	return al, nil
}

// MustParseAllowList is ParseAllowList for entries known to be good; it
// panics on a bad one.
func MustParseAllowList(entries ...string) AllowList {
	al, err := ParseAllowList(entries)
	if err != nil {
		panic(err)
	}
	return al
}

// unmapPrefix turns ::ffff:a.b.c.d/n into a.b.c.d/(n-96), since dialled
// addresses are unmapped before they are compared.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	p = p.Masked()
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

func (al AllowList) allowsAddr(a netip.Addr) bool {
	a = a.WithZone("").Unmap()
	for _, p := range al.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (al AllowList) allowsHost(host string) bool { return al.hosts[normalHost(host)] }

// permits reports whether the guard lets a be dialled.
func (al AllowList) permits(a netip.Addr) bool { return !blocked(a) || al.allowsAddr(a) }

func normalHost(h string) string { return strings.TrimSuffix(strings.ToLower(h), ".") }

// validHostName checks the letters-digits-hyphens shape of a DNS name
// (underscores allowed, as some internal names have them).
func validHostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// numericHost reports a name whose last label starts with a digit: no
// real top-level domain does, but inet_aton's shorthands do ("127.1",
// "2130706433", "0x7f.1"), which a C resolver would read as an address.
func numericHost(h string) bool {
	last := h[strings.LastIndexByte(h, '.')+1:]
	return last != "" && last[0] >= '0' && last[0] <= '9'
}

// checkHookURL vets a hookUrl when a link is created or changed: an
// http(s) URL without credentials, query or fragment (chatgate appends
// /shareAuth/<step> to its path) whose host, if an address, is one the
// guard would dial. A name is taken as is here: what it resolves to is
// checked at each connect.
func checkHookURL(raw string, allow AllowList) error {
	const field = "limit.hookUrl"
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return apierror.InvalidRequest(field, "must be an http(s) URL")
	}
	if u.User != nil {
		return apierror.InvalidRequest(field, "must not carry a user or password; the signature authenticates chatgate")
	}
	if u.RawQuery != "" || u.ForceQuery {
		return apierror.InvalidRequest(field, "must not have a query string; chatgate appends /shareAuth/<step> to its path")
	}
	if strings.Contains(raw, "#") {
		return apierror.InvalidRequest(field, "must not have a fragment")
	}
	if u.Port() == "0" {
		return apierror.InvalidRequest(field, "must not name port 0")
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		if !allow.permits(a) {
			return apierror.InvalidRequest(field, "names %s, an internal address (loopback, private, link-local or reserved) that is not on the allow-list", a.WithZone(""))
		}
		return nil
	}
	if h := normalHost(host); !validHostName(h) || numericHost(h) {
		return apierror.InvalidRequest(field, "must name a host by a DNS name or a standard IP address")
	}
	return nil
}

// guardedClient is the default hook client: dials only what allow
// permits, no proxy from the environment (it would dial the internal
// address for us), no redirects (the target would get the signed body and
// could point anywhere: a 3xx is simply not a verdict).
func guardedClient(allow AllowList) *http.Client {
	g := &dialGuard{allow: allow,
		open: net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}}
	g.guarded = g.open
	g.guarded.Control = g.control
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = g.dialContext
	tr.MaxIdleConnsPerHost = 16
	return &http.Client{Transport: tr, CheckRedirect: noRedirects}
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

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
	if g.allow.allowsHost(host) {
		return g.open.DialContext(ctx, network, addr)
	}
	return g.guarded.DialContext(ctx, network, addr)
}

// control runs after the socket is made and before connect, with the
// address resolved: the one place DNS rebinding cannot slip past.
func (g *dialGuard) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot read %q", errBlockedAddress, address)
	}
	if !g.allow.permits(ap.Addr()) {
		return &blockedError{addr: ap.Addr().WithZone("")}
	}
	return nil
}
