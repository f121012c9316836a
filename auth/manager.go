package auth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/internal/field"
	"github.com/chatgate/chatgate/internal/id"
)

// MaxGrace is the longest grace period a rotation may give the old key.
const MaxGrace = 30 * 24 * time.Hour

// Manager runs the key lifecycle on a store and keeps an Authenticator's
// cache in step with every change.
type Manager struct {
	store ManagerStore
	authn *Authenticator
}

// NewManager returns a Manager for the keys in store. authn, which should
// use the same store, is told of every change.
func NewManager(store ManagerStore, authn *Authenticator) *Manager {
	return &Manager{store: store, authn: authn}
}

// KeySpec describes a key to create or import.
type KeySpec struct {
	Name       string
	TeamID     string // DefaultTeam when empty
	AppID      string // set for an app key
	Scopes     Scopes // defaults: chat for an app key, the data scopes for a global key
	Limit      Limit
	AllowedIPs []netip.Prefix
	// Actor is the key id making the change, for the audit trail.
	Actor string
}

func (m *Manager) newKey(spec KeySpec, secret string, src Source) (*Key, error) {
	name, err := field.Name("name", spec.Name)
	if err != nil {
		return nil, err
	}
	team := cmp.Or(spec.TeamID, DefaultTeam)
	// Teams and apps name storage keys joined with NUL elsewhere; an id
	// outside the charset could run into another team's.
	if err := field.First(field.ID("teamId", team), field.OptionalID("appId", spec.AppID)); err != nil {
		return nil, err
	}
	scopes := spec.Scopes
	if len(scopes) == 0 {
		scopes = defaultScopes(spec.AppID)
	}
	scopes, err = scopes.normalize()
	if err != nil {
		return nil, err
	}
	if spec.Limit.RPM < 0 {
		return nil, apierror.InvalidRequest("limit.rpm", "must be 0 (unlimited) or positive")
	}
	now := time.Now().UTC()
	return &Key{
		ID: id.New(), Name: name, TeamID: team, AppID: spec.AppID, Scopes: scopes,
		Limit: spec.Limit, AllowedIPs: spec.AllowedIPs, Source: src,
		Hash: HashKey(secret), Hint: hint(m.authn.opts.Prefix, secret),
		CreateTime: now, UpdateTime: now,
	}, nil
}

func (m *Manager) event(action AuditAction, k *Key, actor, reason string) *AuditEvent {
	return &AuditEvent{Time: time.Now().UTC(), Action: action, KeyID: k.ID, Hint: k.Hint,
		TeamID: k.TeamID, ActorKeyID: actor, Reason: reason}
}

// Create makes a new key and returns it with its secret, which is not kept
// anywhere and cannot be shown again.
func (m *Manager) Create(ctx context.Context, spec KeySpec) (*Key, string, error) {
	secret := generateKey(m.authn.opts.Prefix)
	k, err := m.newKey(spec, secret, SourceGenerated)
	if err != nil {
		return nil, "", err
	}
	if err := m.store.Create(ctx, k, m.event(AuditKeyCreated, k, spec.Actor, "")); err != nil {
		return nil, "", fmt.Errorf("auth: create key: %w", err)
	}
	return k, secret, nil
}

// Import stores a key the user already has. It must be 5 to 256 printable
// characters without spaces; a key carrying the generated-key prefix must
// also be a well-formed generated key, so prefixed tokens stay checkable.
// A secret that some key of any team already has is refused with a 400
// naming "key" that does not say so.
func (m *Manager) Import(ctx context.Context, spec KeySpec, secret string) (*Key, error) {
	if err := m.checkImport(secret); err != nil {
		return nil, err
	}
	k, err := m.newKey(spec, secret, SourceImported)
	if err != nil {
		return nil, err
	}
	if err := m.store.Create(ctx, k, m.event(AuditKeyImported, k, spec.Actor, "")); err != nil {
		if errors.Is(err, ErrHashInUse) {
			return nil, errImportRefused
		}
		return nil, fmt.Errorf("auth: import key: %w", err)
	}
	m.authn.Invalidate(k.ID)
	return k, nil
}

// errImportRefused answers the import of a secret some key already has, in
// any team. It is the 400 every other refusal of the key is, and says
// nothing of why, so that an import cannot be used to learn whether a
// secret is registered (another team's, a config account's, the root key).
var errImportRefused = apierror.InvalidRequest("key", "cannot be imported; choose another key")

func (m *Manager) checkImport(secret string) error {
	switch {
	case len(secret) < minKeyLen:
		return apierror.InvalidRequest("key", "must be at least %d characters", minKeyLen)
	case len(secret) > maxKeyLen:
		return apierror.InvalidRequest("key", "must be at most %d characters", maxKeyLen)
	case checkToken("", secret) != nil:
		return apierror.InvalidRequest("key", "must be printable ASCII without spaces")
	case checkToken(m.authn.opts.Prefix, secret) != nil:
		return apierror.InvalidRequest("key", "starts with %q, which is reserved for generated keys, but is not a valid generated key", m.authn.opts.Prefix)
	}
	return nil
}

// Get returns the key with id in team; with an empty team, in any team.
// A key of another team is reported as not found.
func (m *Manager) Get(ctx context.Context, team, keyID string) (*Key, error) {
	k, err := m.store.Get(ctx, keyID)
	if errors.Is(err, ErrKeyNotFound) || (err == nil && team != "" && k.TeamID != team) {
		return nil, apierror.NotFound("key")
	}
	if err != nil {
		return nil, err
	}
	m.withLiveUsage(ctx, k)
	return k, nil
}

// withLiveUsage replaces stored usage with the authenticator's, which
// includes what has not been flushed yet, and, with a shared quota
// (Options.Quota), the points as the whole cluster has spent them
// (Options.Usage).
func (m *Manager) withLiveUsage(ctx context.Context, k *Key) {
	m.authn.mu.RLock()
	st := m.authn.byID[k.ID]
	m.authn.mu.RUnlock()
	if st != nil {
		k.UsagePoints = st.used()
		if n := st.lastUsed.Load(); n != 0 && time.Unix(0, n).After(k.LastUsedTime) {
			k.LastUsedTime = time.Unix(0, n).UTC()
		}
	}
	if m.authn.shared {
		if used, err := m.authn.clusterUsed(ctx, k.ID); err == nil {
			k.UsagePoints = used
		} else {
			m.authn.log.WarnContext(ctx, "auth: the quota's count of a key's usage is unavailable; showing this process's", "key", k.ID, "err", err)
		}
	}
}

// List returns the keys matching f, oldest first.
func (m *Manager) List(ctx context.Context, f Filter) ([]*Key, error) {
	ks, err := m.store.List(ctx, f)
	if err != nil {
		return nil, err
	}
	for _, k := range ks {
		m.withLiveUsage(ctx, k)
	}
	return ks, nil
}

// KeyUpdate lists the settings to change; nil fields are left alone.
type KeyUpdate struct {
	Name       *string
	Scopes     *Scopes
	Limit      *Limit
	AllowedIPs *[]netip.Prefix
	Disabled   *bool
	Actor      string
}

// Update changes the settings of key id in team. Keys declared in the
// config file cannot be changed (ErrConfigManaged).
func (m *Manager) Update(ctx context.Context, team, keyID string, u KeyUpdate) (*Key, error) {
	k, err := m.mutable(ctx, team, keyID)
	if err != nil {
		return nil, err
	}
	var changed []string
	if u.Name != nil {
		n, err := field.Name("name", *u.Name)
		if err != nil {
			return nil, err
		}
		k.Name, changed = n, append(changed, "name")
	}
	if u.Scopes != nil {
		ss, err := u.Scopes.normalize()
		if err != nil {
			return nil, err
		}
		if len(ss) == 0 {
			return nil, apierror.InvalidRequest("scopes", "must not be empty")
		}
		k.Scopes, changed = ss, append(changed, "scopes")
	}
	if u.Limit != nil {
		if u.Limit.RPM < 0 {
			return nil, apierror.InvalidRequest("limit.rpm", "must be 0 (unlimited) or positive")
		}
		k.Limit, changed = *u.Limit, append(changed, "limit")
	}
	if u.AllowedIPs != nil {
		k.AllowedIPs, changed = *u.AllowedIPs, append(changed, "allowedIPs")
	}
	if u.Disabled != nil {
		k.Disabled, changed = *u.Disabled, append(changed, "disabled")
	}
	if len(changed) == 0 {
		return nil, apierror.InvalidRequest("", "nothing to update")
	}
	k.UpdateTime = time.Now().UTC()
	if err := m.store.Update(ctx, k, m.event(AuditKeyUpdated, k, u.Actor, strings.Join(changed, ","))); err != nil {
		return nil, fmt.Errorf("auth: update key: %w", err)
	}
	m.authn.Invalidate(k.ID)
	m.withLiveUsage(ctx, k)
	return k, nil
}

// mutable loads a key that the API may change.
func (m *Manager) mutable(ctx context.Context, team, keyID string) (*Key, error) {
	k, err := m.Get(ctx, team, keyID)
	if err != nil {
		return nil, err
	}
	if k.Source == SourceConfig || k.Source == SourceRoot {
		return nil, ErrConfigManaged
	}
	return k, nil
}

// Rotate gives key id a new secret. The old one keeps working for grace
// (0: it stops at once; at most MaxGrace), then fails as an invalid key.
func (m *Manager) Rotate(ctx context.Context, team, keyID string, grace time.Duration, actor string) (*Key, string, error) {
	if grace < 0 || grace > MaxGrace {
		return nil, "", apierror.InvalidRequest("graceSeconds", "must be between 0 and %d", int(MaxGrace/time.Second))
	}
	k, err := m.mutable(ctx, team, keyID)
	if err != nil {
		return nil, "", err
	}
	now := time.Now().UTC()
	retired := k.Retired[:0]
	for _, r := range k.Retired {
		if now.Before(r.Until) {
			retired = append(retired, r)
		}
	}
	if grace > 0 {
		retired = append(retired, RetiredHash{Hash: k.Hash, Until: now.Add(grace)})
	}
	secret := generateKey(m.authn.opts.Prefix)
	k.Retired, k.Hash, k.Hint, k.UpdateTime = retired, HashKey(secret), hint(m.authn.opts.Prefix, secret), now
	if k.Source == SourceImported {
		k.Source = SourceGenerated
	}
	ev := m.event(AuditKeyRotated, k, actor, fmt.Sprintf("grace=%s", grace))
	if err := m.store.Update(ctx, k, ev); err != nil {
		return nil, "", fmt.Errorf("auth: rotate key: %w", err)
	}
	m.authn.Invalidate(k.ID)
	return k, secret, nil
}

// Revoke deletes key id in team; it fails as an invalid key from then on.
func (m *Manager) Revoke(ctx context.Context, team, keyID, actor string) error {
	k, err := m.mutable(ctx, team, keyID)
	if err != nil {
		return err
	}
	if err := m.store.Delete(ctx, k.ID, m.event(AuditKeyRevoked, k, actor, "")); err != nil {
		return fmt.Errorf("auth: revoke key: %w", err)
	}
	m.authn.forget(k.ID)
	return nil
}

// Audit returns audit events, newest first. It first writes the
// aggregated auth failures not yet written, so the trail it returns is
// current; failures later in the same minute make another event.
func (m *Manager) Audit(ctx context.Context, q AuditQuery) ([]AuditEvent, error) {
	if err := m.authn.writeAudit(ctx, true); err != nil {
		m.authn.log.ErrorContext(ctx, "auth: audit query", "err", err) // the stored trail is still worth answering with
	}
	return m.store.Audit(ctx, q)
}
