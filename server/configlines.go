package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
)

// UnmarshalYAML decodes an account, remembering its line and whether it
// says enabled: an account that does not is refused at start-up rather
// than loaded as a disabled key whose first chat fails.
func (a *Account) UnmarshalYAML(n *yaml.Node) error {
	type plain Account
	var p plain
	if err := decodeStrict(n, &p, reflect.TypeFor[Account]()); err != nil {
		return err
	}
	*a = Account(p)
	a.line, a.enabledSet = n.Line, hasKey(n, "enabled")
	return nil
}

// UnmarshalYAML decodes the channel, and gives each account the line of
// its name, which is what an error about the account should point at.
func (c *APIChannel) UnmarshalYAML(n *yaml.Node) error {
	type plain APIChannel
	var p plain
	if err := decodeStrict(n, &p, reflect.TypeFor[APIChannel]()); err != nil {
		return err
	}
	*c = APIChannel(p)
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != "accounts" || n.Content[i+1].Kind != yaml.MappingNode {
			continue
		}
		accs := n.Content[i+1].Content
		for j := 0; j+1 < len(accs); j += 2 {
			if a, ok := c.Accounts[accs[j].Value]; ok {
				a.line = accs[j].Line
				c.Accounts[accs[j].Value] = a
			}
		}
	}
	return nil
}

// UnmarshalYAML decodes a binding, remembering its line for the start-up
// check of its agent_id.
func (b *Binding) UnmarshalYAML(n *yaml.Node) error {
	type plain Binding
	var p plain
	if err := decodeStrict(n, &p, reflect.TypeFor[Binding]()); err != nil {
		return err
	}
	*b = Binding(p)
	b.line = n.Line
	return nil
}

func hasKey(n *yaml.Node, key string) bool {
	if n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

// decodeStrict decodes n into v as LoadConfig's decoder would, unknown
// fields included: a custom UnmarshalYAML decodes its node with a fresh
// decoder that does not know about KnownFields, so the check is made here,
// against t, the type v stands in for.
func decodeStrict(n *yaml.Node, v any, t reflect.Type) error {
	if err := checkKnownFields(n, t); err != nil {
		return err
	}
	return n.Decode(v)
}

// checkKnownFields fails on the first mapping key of n, at any depth, that
// names no field of t, with the yaml package's own wording.
func checkKnownFields(n *yaml.Node, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := map[string]reflect.Type{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			fields[cmp.Or(name, strings.ToLower(f.Name))] = f.Type
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			ft, ok := fields[k.Value]
			if !ok {
				return fmt.Errorf("line %d: field %s not found in type %s", k.Line, k.Value, t)
			}
			if err := checkKnownFields(n.Content[i+1], ft); err != nil {
				return err
			}
		}
	case (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && n.Kind == yaml.SequenceNode:
		for _, c := range n.Content {
			if err := checkKnownFields(c, t.Elem()); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			if err := checkKnownFields(n.Content[i], t.Elem()); err != nil {
				return err
			}
		}
	}
	return nil
}

// where prefixes a config error with the file and line it is about, or
// says there is no line when the config was not read from a file.
func (cfg *Config) where(line int) string {
	if cfg.file == "" || line == 0 {
		return "config (built in code, so no line to name): "
	}
	return fmt.Sprintf("config %s: line %d: ", cfg.file, line)
}

// checkAccounts refuses API-channel accounts read from the file without an
// enabled field. The agent framework's documents always write it, and
// without it the account's key would load disabled and fail only at its
// first chat.
func (cfg *Config) checkAccounts() error {
	for _, n := range slices.Sorted(maps.Keys(cfg.Channels.API.Accounts)) {
		acc := cfg.Channels.API.Accounts[n]
		if acc.line > 0 && !acc.enabledSet {
			return fmt.Errorf("%schannels.api.accounts.%s: enabled is required (true or false)", cfg.where(acc.line), n)
		}
	}
	return nil
}

// checkBindings makes sure the app each config key is bound to exists in
// the account's team, once the config's apps are in apps. A typo in
// agent_id is then a start-up error naming the binding's line instead of
// a 404 at the account's first chat.
func (cfg *Config) checkBindings(ctx context.Context, keys []auth.ConfigKey, apps chat.AppStore) error {
	for _, ck := range keys {
		i := cfg.bindingIndex(ck.Account)
		if i < 0 {
			continue
		}
		b := cfg.Bindings[i]
		if b.AgentID == "" {
			return fmt.Errorf("%sbindings[%d].agent_id is required", cfg.where(b.line), i)
		}
		team := cmp.Or(ck.TeamID, auth.DefaultTeam)
		_, err := apps.App(ctx, team, b.AgentID)
		switch {
		case errors.Is(err, chat.ErrAppNotFound):
			return fmt.Errorf("%sbindings[%d].agent_id: no app %q in team %q, which account %s is in; declare it under apps: or create it first",
				cfg.where(b.line), i, b.AgentID, team, ck.Account)
		case err != nil:
			return fmt.Errorf("config: bindings[%d]: %w", i, err)
		}
	}
	return nil
}
