package pgstore_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/auth/pgstore"
)

// A replica keeps its keys in Postgres by giving its Authenticator and
// Manager a pgstore, and keeps its key cache in step with the changes the
// other replicas make by running Watch. The example runs against the
// database CHATGATE_TEST_POSTGRES names, in its default schema, and does
// nothing without one.
func Example() {
	dsn, ok := os.LookupEnv("CHATGATE_TEST_POSTGRES")
	if !ok {
		return
	}
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()                         // ends Watch, before the pool closes
	store, err := pgstore.New(ctx, pool) // migrates, under a lock: replicas may start together
	if err != nil {
		log.Fatal(err)
	}
	authn := auth.NewAuthenticator(store, auth.Options{})
	defer authn.Close(context.Background())
	go store.Watch(ctx, func(keyID string) {
		if keyID == "" {
			authn.InvalidateAll() // (re)connected: changes may have gone unheard
		} else {
			authn.Invalidate(keyID)
		}
	})
	mgr := auth.NewManager(store, authn)

	k, secret, err := mgr.Create(ctx, auth.KeySpec{Name: "docs bot", AppID: "app-1"})
	if err != nil {
		log.Fatal(err)
	}
	p, err := authn.Authenticate(ctx, secret, netip.MustParseAddr("192.0.2.1"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.KeyName, p.AppID)
	// revoked here, the key is refused by every replica's Authenticator
	// as soon as its Watch hears of it
	if err := mgr.Revoke(ctx, "", k.ID, ""); err != nil {
		log.Fatal(err)
	}
}
