package pgstore_test

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/chatgate/chatgate/auth"
)

// What the suite does not reach: values that only a store of columns
// could get wrong.
func TestRoundTrip(t *testing.T) {
	s := open(t)
	k := key("k")
	k.Scopes = auth.Scopes{}
	k.AllowedIPs = nil
	k.Meta = map[string]string{}
	k.CreateTime, k.UpdateTime = time.Time{}, time.Time{}
	if err := s.Create(ctx, k, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Scopes) != 0 || got.AllowedIPs != nil || got.Meta != nil || got.Retired != nil ||
		!got.CreateTime.IsZero() || !got.UpdateTime.IsZero() || !got.Limit.ExpiredTime.IsZero() || !got.LastUsedTime.IsZero() {
		t.Fatalf("empty fields came back as %+v", got)
	}
	k.AllowedIPs = []netip.Prefix{netip.MustParsePrefix("10.1.2.3/8"), netip.MustParsePrefix("::ffff:10.0.0.0/104"),
		netip.MustParsePrefix("192.0.2.1/32")}
	k.Retired = []auth.RetiredHash{{Hash: k.Hash, Until: t0}} // a hash listed twice is the key's once
	if err := s.Update(ctx, k, nil); err != nil {
		t.Fatal(err)
	}
	if got, err = s.GetByHash(ctx, k.Hash); err != nil || !slices.Equal(got.AllowedIPs, k.AllowedIPs) || len(got.Retired) != 1 {
		t.Fatalf("after the update: %+v, %v", got, err)
	}
}
