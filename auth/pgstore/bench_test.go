package pgstore_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/chatgate/chatgate/auth"
)

// GetByHash is asked by every request whose key the Authenticator has not
// cached, or cached longer ago than CacheTTL: one statement, over keys
// with every field set.
func BenchmarkGetByHash(b *testing.B) {
	s := open(b)
	hashes := make([]auth.Hash, 1000)
	for i := range hashes {
		k := key(fmt.Sprintf("k%04d", i))
		k.AppID, k.Scopes = "app-1", auth.Scopes{auth.ScopeChat, auth.ScopeDatasetRead}
		k.Limit = auth.Limit{ExpiredTime: t0.Add(24 * time.Hour), MaxUsagePoints: 1000, RPM: 60}
		k.AllowedIPs = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		k.Retired = []auth.RetiredHash{{Hash: auth.HashKey(fmt.Sprintf("old-%d", i)), Until: t0.Add(time.Hour)}}
		k.Meta = map[string]string{"dm_policy": "open"}
		if err := s.Create(ctx, k, nil); err != nil {
			b.Fatal(err)
		}
		hashes[i] = k.Hash
	}
	if err := s.AddUsage(ctx, []auth.Usage{{KeyID: "k0001", Points: 1, LastUsed: t0}}); err != nil {
		b.Fatal(err)
	}
	b.Run("Serial", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := s.GetByHash(ctx, hashes[i%len(hashes)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if _, err := s.GetByHash(ctx, hashes[i%len(hashes)]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// A warm key check on a replica whose keys are in Postgres: the
// Authenticator answers from its cache and the store is not asked, so it
// costs what it does on any store.
func BenchmarkAuthenticateWarm(b *testing.B) {
	s := open(b)
	authn := auth.NewAuthenticator(s, auth.Options{FlushInterval: time.Hour})
	b.Cleanup(func() { _ = authn.Close(ctx) })
	_, secret, err := auth.NewManager(s, authn).Create(ctx, auth.KeySpec{Name: "bench", AppID: "app-1"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := authn.Authenticate(ctx, secret, loopback); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := authn.Authenticate(ctx, secret, loopback); err != nil {
			b.Fatal(err)
		}
	}
}
