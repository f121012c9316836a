package auth

import (
	"net/netip"
	"slices"
	"time"
)

// DefaultTeam is the team of records created without one: single-team
// installs never need to name a team.
const DefaultTeam = "default"

// Source says where a key came from.
type Source string

// Key sources.
const (
	SourceGenerated Source = "generated" // made by chatgate and shown once
	SourceImported  Source = "imported"  // a key the user already had
	SourceConfig    Source = "config"    // declared in the config file; read-only through the API
	SourceRoot      Source = "root"      // the bootstrap admin key
)

// Limit bounds what a key may do. The zero Limit allows everything.
type Limit struct {
	// ExpiredTime is when the key stops working; zero means never.
	ExpiredTime time.Time `json:"expiredTime,omitzero"`
	// MaxUsagePoints is the points quota; -1 (or 0 in a zero Limit) means unlimited.
	MaxUsagePoints float64 `json:"maxUsagePoints"`
	// RPM is the rate limit in requests per minute; 0 means unlimited.
	RPM int `json:"rpm"`
}

// unlimitedPoints reports whether the quota is off. A zero value means
// unlimited so that the zero Limit works; the API spells it -1.
func (l Limit) unlimitedPoints() bool { return l.MaxUsagePoints <= 0 }

// RetiredHash is a key's previous hash, still accepted until Until.
type RetiredHash struct {
	Hash  Hash      `json:"hash"`
	Until time.Time `json:"until"`
}

// Key is a stored API key. It never holds the key itself.
type Key struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	TeamID     string         `json:"teamId"`
	AppID      string         `json:"appId,omitempty"`
	Scopes     Scopes         `json:"scopes"`
	Limit      Limit          `json:"limit"`
	AllowedIPs []netip.Prefix `json:"allowedIPs,omitempty"`
	Disabled   bool           `json:"disabled"`
	Source     Source         `json:"source"`
	Hash       Hash           `json:"hash"`
	Hint       string         `json:"hint"`
	// Retired holds hashes replaced by rotation that still work for a grace period.
	Retired    []RetiredHash `json:"retired,omitempty"`
	CreateTime time.Time     `json:"createTime"`
	UpdateTime time.Time     `json:"updateTime"`
	// Meta carries source-specific settings, such as a config account's policies.
	Meta map[string]string `json:"meta,omitempty"`

	// Usage is kept apart from the record so that counting usage never races
	// with an update of the key's settings; stores fill it in on reads.
	UsagePoints  float64   `json:"-"`
	LastUsedTime time.Time `json:"-"`
}

// IsAppKey reports whether the key carries an app id.
func (k *Key) IsAppKey() bool { return k.AppID != "" }

// hashes returns every hash that currently resolves to the key.
func (k *Key) hashes() []Hash {
	hs := make([]Hash, 0, 1+len(k.Retired))
	hs = append(hs, k.Hash)
	for _, r := range k.Retired {
		hs = append(hs, r.Hash)
	}
	return hs
}

// Clone returns a deep copy, so callers can change it without touching a
// record shared with a cache or a memory store.
func (k *Key) Clone() *Key {
	c := *k
	c.Scopes = slices.Clone(k.Scopes)
	c.AllowedIPs = slices.Clone(k.AllowedIPs)
	c.Retired = slices.Clone(k.Retired)
	if k.Meta != nil {
		c.Meta = make(map[string]string, len(k.Meta))
		for a, b := range k.Meta {
			c.Meta[a] = b
		}
	}
	return &c
}

// Usage is a batch of usage to add to a key: points spent and when it was last used.
type Usage struct {
	KeyID    string
	Points   float64
	LastUsed time.Time
}
