package outbound

import "net/netip"

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

// Blocked reports whether the guard refuses to dial a unless an allow-list
// names it: loopback, private (RFC 1918, fc00::/7), link-local, multicast,
// unspecified, CGNAT, 0.0.0.0/8, broadcast and the other special-purpose
// ranges, in IPv4 or any IPv6 form that carries an IPv4 address (mapped,
// NAT64, 6to4).
func Blocked(a netip.Addr) bool {
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
			return Blocked(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(a):
			return Blocked(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	return false
}
