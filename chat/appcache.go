package chat

import (
	"bytes"
	"slices"
	"sync"
)

// AppCache keeps decoded apps, each beside the bytes it was decoded from,
// for an AppStore that stores apps encoded (BoltStore, chat/pgstore). A
// read still looks its app up where it is stored and takes the decoded
// copy only when the stored bytes are the very ones, so the cache is never
// stale, whoever wrote the app and from which replica: what it saves is
// the decoding, most of what an app read costs on every chat. The zero
// value is an empty cache; it is safe for concurrent use.
type AppCache struct {
	mu sync.RWMutex
	m  map[string]*appCacheEntry
}

type appCacheEntry struct {
	raw []byte
	app App
}

// appCacheMax bounds the entries; past it the cache starts over, which
// costs the apps in use one decoding each.
const appCacheMax = 4096

// Get returns a copy of the app stored as raw under key, if it is cached
// beside those bytes.
func (c *AppCache) Get(key string, raw []byte) (*App, bool) {
	c.mu.RLock()
	e := c.m[key]
	c.mu.RUnlock()
	if e == nil || !bytes.Equal(e.raw, raw) {
		return nil, false
	}
	return cloneApp(&e.app), true
}

// Put keeps a copy of a, decoded from raw, under key. raw is copied too,
// as a store's bytes (bbolt's, a driver's) may be its own again once the
// read ends.
func (c *AppCache) Put(key string, raw []byte, a *App) {
	e := &appCacheEntry{raw: slices.Clone(raw), app: *cloneApp(a)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= appCacheMax {
		c.m = map[string]*appCacheEntry{}
	}
	c.m[key] = e
}
