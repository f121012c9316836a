package decodecache_test

import (
	"fmt"
	"testing"

	"github.com/chatgate/chatgate/internal/decodecache"
)

type doc struct{ Tags []string }

func cloneDoc(d *doc) *doc { return &doc{Tags: append([]string(nil), d.Tags...)} }

// A cached value is handed out only for the very bytes it was decoded
// from, and as a copy: neither the caller's value nor the bytes it passed
// are the cache's.
func TestCacheHandsOutCopiesForTheSameBytesOnly(t *testing.T) {
	c := decodecache.Cache[doc]{Clone: cloneDoc}
	raw := []byte(`{"tags":["a"]}`)
	v := &doc{Tags: []string{"a"}}
	c.Put("k", raw, v)
	v.Tags[0], raw[3] = "changed", 'X' // the caller's, after Put
	got, ok := c.Get("k", []byte(`{"tags":["a"]}`))
	if !ok || got.Tags[0] != "a" {
		t.Fatalf("Get = %+v, %v; want a copy of what was put", got, ok)
	}
	got.Tags[0] = "changed"
	if again, _ := c.Get("k", []byte(`{"tags":["a"]}`)); again.Tags[0] != "a" {
		t.Fatalf("a change to what Get returned reached the cache: %+v", again)
	}
	if _, ok := c.Get("k", []byte(`{"tags":["b"]}`)); ok {
		t.Fatal("Get returned a value decoded from other bytes")
	}
	if _, ok := c.Get("other", []byte(`{"tags":["a"]}`)); ok {
		t.Fatal("Get returned another key's value")
	}
}

// Without Clone the cache keeps nothing: it could not keep callers from
// changing what it handed out.
func TestCacheWithoutCloneKeepsNothing(t *testing.T) {
	var c decodecache.Cache[doc]
	c.Put("k", []byte("x"), &doc{})
	if _, ok := c.Get("k", []byte("x")); ok {
		t.Fatal("a cache without Clone handed out a value")
	}
}

// Past Max entries the cache starts over rather than grow.
func TestCacheStartsOverPastMax(t *testing.T) {
	c := decodecache.Cache[doc]{Clone: cloneDoc}
	for i := range decodecache.Max + 1 {
		c.Put(fmt.Sprint(i), []byte("x"), &doc{})
	}
	if _, ok := c.Get("0", []byte("x")); ok {
		t.Fatal("the first entry outlived Max more")
	}
	if _, ok := c.Get(fmt.Sprint(decodecache.Max), []byte("x")); !ok {
		t.Fatal("the last entry put is gone")
	}
}

func ExampleCache() {
	c := decodecache.Cache[doc]{Clone: cloneDoc}
	raw := []byte(`{"tags":["a"]}`)
	if _, ok := c.Get("k", raw); !ok {
		c.Put("k", raw, &doc{Tags: []string{"a"}}) // decoded from raw
	}
	d, ok := c.Get("k", raw)
	fmt.Println(d.Tags, ok)
	// Output: [a] true
}
