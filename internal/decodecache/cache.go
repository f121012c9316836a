// Package decodecache keeps values decoded from stored bytes beside those
// bytes, for stores that keep records encoded (chat's BoltStore and
// chat/pgstore keep apps as JSON).
//
// A read still fetches its bytes where they are stored and takes the
// decoded copy only when they are the very bytes it was decoded from, so
// the cache is never stale, whoever wrote the record and from which
// process: what it saves is the decoding.
package decodecache

import (
	"bytes"
	"slices"
	"sync"
)

// Max bounds a Cache's entries; past it the cache starts over, which costs
// the records in use one decoding each.
const Max = 4096

// Cache keeps decoded values by key. Clone copies a value deeply, so that
// what a caller is handed is its own; without it the cache keeps nothing,
// as what it handed out could be changed under it. The zero value with
// Clone set is an empty cache, safe for concurrent use.
type Cache[T any] struct {
	Clone func(*T) *T

	mu sync.RWMutex
	m  map[string]*entry[T]
}

type entry[T any] struct {
	raw []byte
	v   *T
}

// Get returns a copy of the value stored as raw under key, if it is cached
// beside those bytes.
func (c *Cache[T]) Get(key string, raw []byte) (*T, bool) {
	if c.Clone == nil {
		return nil, false
	}
	c.mu.RLock()
	e := c.m[key]
	c.mu.RUnlock()
	if e == nil || !bytes.Equal(e.raw, raw) {
		return nil, false
	}
	return c.Clone(e.v), true
}

// Put keeps a copy of v, decoded from raw, under key. raw is copied too,
// as a store's bytes (bbolt's, a driver's) may be its own again once the
// read ends.
func (c *Cache[T]) Put(key string, raw []byte, v *T) {
	if c.Clone == nil {
		return
	}
	e := &entry[T]{raw: slices.Clone(raw), v: c.Clone(v)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= Max {
		c.m = map[string]*entry[T]{}
	}
	c.m[key] = e
}
