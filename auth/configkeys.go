package auth

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/chatgate/chatgate/apierror"
)

// ConfigKey is a key declared in the config file, as an account of the API
// channel. Its secret is hashed when loaded; the API cannot change it.
type ConfigKey struct {
	Account string // the account's name in the file; the key id is "cfg-" + Account
	Name    string
	Enabled bool
	Secret  string
	TeamID  string
	AppID   string // from the bindings; empty for a global key
	Scopes  Scopes
	Limit   Limit
	// Meta holds the account's other settings (dm_policy, group_policy).
	Meta map[string]string
}

// ConfigKeyID returns the key id of a config account.
func ConfigKeyID(account string) string { return "cfg-" + account }

// SyncConfig makes the stored config keys match keys: new ones are added,
// changed ones updated (their usage kept), and config keys no longer
// declared are deleted. It validates all of them before changing anything.
func (m *Manager) SyncConfig(ctx context.Context, keys []ConfigKey) error {
	want := map[string]*Key{}
	for _, ck := range keys {
		field := "channels.api.accounts." + ck.Account
		if ck.Account == "" {
			return apierror.InvalidRequest("channels.api.accounts", "an account has no name")
		}
		if err := m.checkImport(ck.Secret); err != nil {
			return apierror.InvalidRequest(field+".api_key", "%s", strings.TrimPrefix(err.Error(), `invalid field "key": `))
		}
		name := ck.Name
		if name == "" {
			name = ck.Account
		}
		k, err := m.newKey(KeySpec{Name: name, TeamID: ck.TeamID, AppID: ck.AppID, Scopes: ck.Scopes, Limit: ck.Limit}, ck.Secret, SourceConfig)
		if err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
		k.ID, k.Disabled, k.Meta = ConfigKeyID(ck.Account), !ck.Enabled, ck.Meta
		if _, dup := want[k.ID]; dup {
			return apierror.InvalidRequest(field, "is declared twice")
		}
		for _, o := range want {
			if o.Hash == k.Hash {
				return apierror.InvalidRequest(field+".api_key", "is the same as another account's")
			}
		}
		want[k.ID] = k
	}

	// A secret held by a key the config does not manage cannot be taken
	// over. Check before changing anything, so a bad config changes nothing.
	for _, id := range slices.Sorted(maps.Keys(want)) {
		other, err := m.store.GetByHash(ctx, want[id].Hash)
		switch {
		case errors.Is(err, ErrKeyNotFound):
		case err != nil:
			return err
		case other.ID != id && other.Source != SourceConfig:
			return apierror.InvalidRequest("channels.api.accounts."+strings.TrimPrefix(id, "cfg-")+".api_key", "is already in use by a key that is not in the config file")
		}
	}

	have, err := m.store.List(ctx, Filter{Source: SourceConfig})
	if err != nil {
		return err
	}
	for _, old := range have {
		if _, ok := want[old.ID]; ok {
			continue
		}
		if err := m.store.Delete(ctx, old.ID, m.event(AuditKeyConfig, old, "", "removed from config")); err != nil && !errors.Is(err, ErrKeyNotFound) {
			return fmt.Errorf("auth: remove config key %s: %w", old.ID, err)
		}
		m.authn.forget(old.ID)
	}
	for _, id := range slices.Sorted(maps.Keys(want)) {
		k := want[id]
		old, err := m.store.Get(ctx, id)
		switch {
		case errors.Is(err, ErrKeyNotFound):
			err = m.store.Create(ctx, k, m.event(AuditKeyConfig, k, "", "loaded"))
		case err != nil:
		case sameConfigKey(old, k):
			continue
		default:
			k.CreateTime = old.CreateTime
			err = m.store.Update(ctx, k, m.event(AuditKeyConfig, k, "", "changed"))
		}
		if errors.Is(err, ErrHashInUse) {
			return apierror.InvalidRequest("channels.api.accounts."+strings.TrimPrefix(id, "cfg-")+".api_key", "is already in use by a key that is not in the config file")
		}
		if err != nil {
			return fmt.Errorf("auth: load config key %s: %w", id, err)
		}
		m.authn.Invalidate(id)
	}
	return nil
}

func sameConfigKey(a, b *Key) bool {
	return a.Hash == b.Hash && a.Name == b.Name && a.TeamID == b.TeamID && a.AppID == b.AppID &&
		a.Disabled == b.Disabled && slices.Equal(a.Scopes, b.Scopes) && a.Limit == b.Limit &&
		maps.Equal(a.Meta, b.Meta) && a.Source == b.Source
}

// RootKeyID is the id of the bootstrap admin key.
const RootKeyID = "root"

// EnsureRootKey makes sure an admin key exists. With a secret (the
// CHATGATE_ROOT_KEY of the reference server) the root key is set to it; if
// that replaces a root key of another value, a warning naming the replaced
// key's hint is logged.
// Without one, and with no enabled admin key stored, it creates a root key
// and returns its secret so the caller can show it once; otherwise it
// returns "".
func (m *Manager) EnsureRootKey(ctx context.Context, secret string) (string, error) {
	spec := KeySpec{Name: "root", Scopes: Scopes{ScopeAdmin}}
	old, err := m.store.Get(ctx, RootKeyID)
	if err != nil && !errors.Is(err, ErrKeyNotFound) {
		return "", err
	}
	shown := ""
	if secret == "" {
		ks, err := m.store.List(ctx, Filter{})
		if err != nil {
			return "", err
		}
		for _, k := range ks {
			if k.Scopes.Has(ScopeAdmin) && !k.Disabled {
				return "", nil
			}
		}
		secret = generateKey(m.authn.opts.Prefix)
		shown = secret
	} else if err := m.checkImport(secret); err != nil {
		return "", fmt.Errorf("root key: %w", err)
	}
	k, err := m.newKey(spec, secret, SourceRoot)
	if err != nil {
		return "", err
	}
	k.ID = RootKeyID
	switch {
	case old == nil:
		err = m.store.Create(ctx, k, m.event(AuditRootKeyReady, k, "", "created"))
	case old.Hash == k.Hash && !old.Disabled && old.Scopes.Has(ScopeAdmin):
		return shown, nil
	default:
		k.CreateTime = old.CreateTime
		if old.Hash != k.Hash {
			// The key printed at first start (or set before) stops working
			// here; say so, naming it by hint, or its holder is left to guess.
			msg := "auth: CHATGATE_ROOT_KEY replaces the stored root key; the replaced key no longer works"
			if shown != "" {
				msg = "auth: no admin key is enabled; a new root key replaces the stored one, which no longer works"
			}
			m.authn.log.WarnContext(ctx, msg, "replaced_hint", old.Hint, "hint", k.Hint)
		}
		err = m.store.Update(ctx, k, m.event(AuditRootKeyReady, k, "", "replaced"))
	}
	if err != nil {
		return "", fmt.Errorf("auth: root key: %w", err)
	}
	m.authn.Invalidate(RootKeyID)
	return shown, nil
}
