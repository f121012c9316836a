package shareauth

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/internal/outbound"
)

// A link's hookUrl is chosen by any team admin and called by any visitor
// without a key, so it must not become a way into the network chatgate runs
// in: the default client refuses internal addresses (checked on the address
// actually dialled, so a name that resolves, or later rebinds, to one is
// refused too), never follows redirects and ignores proxy variables.

// AllowList opens internal auth hosts to the default client: the operator's
// exception to the blocked ranges. Its zero value allows nothing. It is
// the guard every outbound call of chatgate's makes (internal/outbound).
type AllowList = outbound.AllowList

// ParseAllowList reads entries, each a CIDR ("10.1.0.0/16"), an IP address
// (one host) or a host name ("auth.internal"). A CIDR or address permits
// those resolved addresses, whatever name led there; a host name permits
// that name (and only it) whatever it resolves to. The error names the
// entry.
func ParseAllowList(entries []string) (AllowList, error) {
	al, err := outbound.ParseAllowList(entries)
	if err != nil {
		return AllowList{}, fmt.Errorf("shareauth: %w", err)
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
		if !allow.Permits(a) {
			return apierror.InvalidRequest(field, "names %s, an internal address (loopback, private, link-local or reserved) that is not on the allow-list", a.WithZone(""))
		}
		return nil
	}
	if !outbound.ValidHost(host) {
		return apierror.InvalidRequest(field, "must name a host by a DNS name or a standard IP address")
	}
	return nil
}

// guardedClient is the default hook client: dials only what allow
// permits, no proxy from the environment (it would dial the internal
// address for us), no redirects (the target would get the signed body and
// could point anywhere: a 3xx is simply not a verdict). Its calls are
// bounded by HookTimeout and the hook's own body limit, not the client's.
func guardedClient(allow AllowList) *http.Client {
	return outbound.New(outbound.Options{Allow: allow}).HTTP()
}

// noRedirects keeps a caller's own client from following redirects.
func noRedirects(r *http.Request, via []*http.Request) error { return outbound.NoRedirects(r, via) }
