package shareauth

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/internal/outbound/outboundtest"
)

func TestCheckHookURL(t *testing.T) {
	allow := MustParseAllowList("127.0.0.1/32", "10.9.0.0/16")
	for _, ok := range []string{
		"https://auth.example.com", "http://auth.example.com:8443/base/path/", "http://localhost:9700", "http://127.0.0.1:9700",
		"http://[::ffff:127.0.0.1]:80", "http://10.9.3.4", "https://8.8.8.8", "http://[2606:4700::1]:8080/x",
	} {
		if err := checkHookURL(ok, allow); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{
		"ftp://auth.example.com", "auth.example.com", "http://", "http:opaque",
		"http://user:pw@auth.example.com", "http://user@auth.example.com",
		"http://auth.example.com/?a=b", "http://auth.example.com?", "http://auth.example.com/#frag", "http://auth.example.com#",
		"http://127.0.0.2", "http://[::1]", "http://[::ffff:169.254.169.254]", "http://169.254.169.254/latest/meta-data",
		"http://10.0.0.1", "http://0.0.0.0:80", "http://100.64.0.1", "http://224.0.0.1", "http://[fe80::1%25eth0]",
		"http://127.1", "http://2130706433", "http://0x7f.0.0.1", "http://auth.example.com:0", "http://exa mple.com",
	} {
		err := checkHookURL(bad, allow)
		var ae *apierror.Error
		if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Message, "limit.hookUrl") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// TestGuardedClient runs the guard's checks on the client shareauth calls
// hooks with, so that a hook client built without the guard fails here.
func TestGuardedClient(t *testing.T) {
	outboundtest.TestClient(t, guardedClient)
}

func TestParseAllowListNamesTheEntry(t *testing.T) {
	if _, err := ParseAllowList([]string{"127.0.0.1/32", "127.1"}); err == nil || !strings.Contains(err.Error(), "shareauth: allow-list entry 1") {
		t.Fatalf("err = %v", err)
	}
	al := MustParseAllowList("10.1.0.0/16", "auth.internal")
	if !al.Permits(netip.MustParseAddr("10.1.2.3")) || al.Permits(netip.MustParseAddr("10.2.0.1")) || !al.AllowsHost("Auth.Internal.") {
		t.Fatalf("allow-list %v", al)
	}
}
