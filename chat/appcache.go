package chat

import (
	"bytes"
	"slices"
	"sync"
)

// appCache keeps the apps a BoltStore decoded, each beside the bytes it was
// decoded from. A read still looks its app up in its own transaction and
// takes the decoded copy only when the stored bytes are the very ones, so
// the cache is never stale, whoever wrote the file and however: what it
// saves is the JSON decoding, most of what an app read cost on every chat.
// The zero value is an empty cache.
type appCache struct {
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

// get returns a copy of the app stored as raw under key, if cached.
func (c *appCache) get(key string, raw []byte) (*App, bool) {
	c.mu.RLock()
	e := c.m[key]
	c.mu.RUnlock()
	if e == nil || !bytes.Equal(e.raw, raw) {
		return nil, false
	}
	return cloneApp(&e.app), true
}

// put keeps a, decoded from raw (which bbolt owns only until its
// transaction ends, so it is copied).
func (c *appCache) put(key string, raw []byte, a *App) {
	e := &appCacheEntry{raw: slices.Clone(raw), app: *cloneApp(a)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= appCacheMax {
		c.m = map[string]*appCacheEntry{}
	}
	c.m[key] = e
}
