package outbound

import (
	"fmt"
	"net/netip"
	"strings"
)

// AllowList opens internal hosts to the guard: the operator's exception to
// the blocked ranges. Its zero value allows nothing.
type AllowList struct {
	prefixes []netip.Prefix
	hosts    map[string]bool
}

// ParseAllowList reads entries, each a CIDR ("10.1.0.0/16"), an IP address
// (one host) or a host name ("auth.internal"). A CIDR or address permits
// those resolved addresses, whatever name led there; a host name permits
// that name (and only it) whatever it resolves to. The error names the
// entry by its index.
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
		if !ValidHost(s) {
			return AllowList{}, fmt.Errorf("allow-list entry %d (%q) is not a CIDR, an IP address or a host name", i, e)
		}
		if al.hosts == nil {
			al.hosts = map[string]bool{}
		}
		al.hosts[NormalHost(s)] = true
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

// AllowsHost reports whether host is a name on the list; such a name is
// dialled whatever it resolves to.
func (al AllowList) AllowsHost(host string) bool { return al.hosts[NormalHost(host)] }

// Permits reports whether the guard lets a be dialled: it is not in a
// blocked range, or the list names it.
func (al AllowList) Permits(a netip.Addr) bool { return !Blocked(a) || al.allowsAddr(a) }

// NormalHost is a host name as the list compares it: lower case, without
// a final dot.
func NormalHost(h string) string { return strings.TrimSuffix(strings.ToLower(h), ".") }

// ValidHost reports whether h is a DNS name the guard accepts: the
// letters-digits-hyphens shape (underscores allowed, as some internal names
// have them) and no last label that starts with a digit, since no real
// top-level domain does but inet_aton's shorthands do ("127.1",
// "2130706433", "0x7f.1"), which a C resolver would read as an address.
func ValidHost(h string) bool {
	h = NormalHost(h)
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
	last := h[strings.LastIndexByte(h, '.')+1:]
	return last[0] < '0' || last[0] > '9'
}
