package outbound

import (
	"net/netip"
	"strings"
	"testing"
)

func TestBlockedAddresses(t *testing.T) {
	for _, s := range []string{
		"127.0.0.1", "127.255.255.254", "::1", "::ffff:127.0.0.1", // loopback, also IPv4-mapped
		"10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "fc00::1", "fd12:3456::1", // private
		"169.254.169.254", "::ffff:169.254.169.254", "fe80::1", "fe80::1%eth0", // link-local, cloud metadata
		"224.0.0.1", "239.255.255.250", "ff02::1", "ff05::2", // multicast
		"0.0.0.0", "::", "0.1.2.3", // unspecified, "this network"
		"100.64.0.1", "100.127.255.255", // CGNAT
		"255.255.255.255", "240.0.0.1", // broadcast, reserved
		"198.18.0.1", "192.0.0.8", "fec0::1", // benchmarking, IETF, site-local
		"::127.0.0.1",                                            // IPv4-compatible
		"64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "2002:a00:1::1", // NAT64 and 6to4 carrying internal IPv4
		"64:ff9b:1::1", // local-use NAT64
	} {
		if !Blocked(netip.MustParseAddr(s)) {
			t.Errorf("%s is not blocked", s)
		}
	}
	for _, s := range []string{
		"8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.0", "172.32.0.1", "11.0.0.1", "169.253.255.255",
		"2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
	} {
		if Blocked(netip.MustParseAddr(s)) {
			t.Errorf("%s is blocked", s)
		}
	}
}

func TestParseAllowList(t *testing.T) {
	al, err := ParseAllowList([]string{" 127.0.0.1/32 ", "10.1.0.0/16", "::ffff:192.168.0.0/120", "fd00::5", "Auth.Internal.", "auth_svc"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"127.0.0.1", "::ffff:127.0.0.1", "10.1.200.3", "192.168.0.9", "fd00::5"} {
		if !al.Permits(netip.MustParseAddr(s)) {
			t.Errorf("%s not permitted", s)
		}
	}
	for _, s := range []string{"127.0.0.2", "10.2.0.1", "192.168.1.9", "fd00::6", "169.254.169.254"} {
		if al.Permits(netip.MustParseAddr(s)) {
			t.Errorf("%s permitted", s)
		}
	}
	if !al.AllowsHost("auth.internal") || !al.AllowsHost("AUTH.internal.") || !al.AllowsHost("auth_svc") || al.AllowsHost("internal") {
		t.Errorf("host names: %v", al.hosts)
	}
	for _, bad := range []string{"10.0.0.0/33", "http://auth.internal", "auth.internal:80", "127.1", "a b", "", "fe80::1%eth0", "-x.internal"} {
		if _, err := ParseAllowList([]string{"127.0.0.1/32", bad}); err == nil || !strings.Contains(err.Error(), "entry 1") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
