package auth

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/chatgate/chatgate/apierror"
)

// ClientIP returns the address a request came from. X-Forwarded-For is
// believed only when the peer is one of the trusted proxies, and then only up
// to the first hop that is not itself trusted, read from the right, so a
// client cannot name its own address by sending the header.
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := parseAddr(r.RemoteAddr)
	if !peer.IsValid() || !inPrefixes(peer, trusted) {
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		list := hops[i]
		for list != "" {
			var hop string
			if j := strings.LastIndexByte(list, ','); j >= 0 {
				hop, list = list[j+1:], list[:j]
			} else {
				hop, list = list, ""
			}
			a := parseAddr(strings.TrimSpace(hop))
			if !a.IsValid() {
				return peer // a garbled chain is not trusted past its last good hop
			}
			if !inPrefixes(a, trusted) {
				return a
			}
			peer = a
		}
	}
	return peer
}

// parseAddr accepts "ip", "ip:port" and "[ipv6]:port", and unmaps IPv4-in-IPv6.
func parseAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParsePrefixes parses CIDRs; a bare address is taken as a single-host prefix.
// The error names the offending entry.
func ParsePrefixes(field string, ss []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ss))
	for i, s := range ss {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		return nil, apierror.InvalidRequest(field, "entry %d (%q) is not a CIDR or IP address", i, s)
	}
	return out, nil
}
