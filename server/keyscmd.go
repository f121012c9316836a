package server

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/chatgate/chatgate/auth"
)

const keysUsage = `usage: keys <command> [flags]

commands:
  create   create a key and print it once
  import   store a key you already have
  list     list keys (never the keys themselves)
  revoke   delete a key; it stops working at once
  rotate   give a key a new value; the old one works for -grace

Run 'keys <command> -h' for its flags. The commands work on the data
directory directly and refuse to run while a server holds it.`

// KeysCommand runs the key subcommands (create, import, list, revoke,
// rotate) against the data directory of cfg, writing results to out. It
// fails at once, rather than waiting, when a running server holds the
// database.
func KeysCommand(ctx context.Context, cfg Config, args []string, out io.Writer) (err error) {
	if len(args) == 0 {
		return errors.New(keysUsage)
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("keys "+cmd, flag.ContinueOnError)
	fs.SetOutput(out)
	var (
		name     = fs.String("name", "", "key name (required for create and import)")
		app      = fs.String("app", "", "app id: makes an app key that can chat with that app")
		team     = fs.String("team", "", "team id (default \"default\")")
		scopes   = fs.String("scopes", "", "comma-separated scopes: chat, dataset:read, dataset:write, billing:read, admin")
		expires  = fs.String("expires", "", "expiry: an RFC 3339 time, or a duration from now such as 720h")
		rpm      = fs.Int("rpm", 0, "requests per minute (0: unlimited)")
		points   = fs.Float64("max-points", -1, "usage points quota (-1: unlimited)")
		ips      = fs.String("allow-ip", "", "comma-separated CIDRs or addresses allowed to use the key")
		keyValue = fs.String("key", "", "the key to import")
		id       = fs.String("id", "", "key id (revoke, rotate)")
		grace    = fs.Duration("grace", 0, "rotate: how long the old key keeps working")
		asJSON   = fs.Bool("json", false, "list: print JSON")
	)
	switch cmd {
	case "create", "import", "list", "revoke", "rotate":
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(out, keysUsage)
		return nil
	default:
		return fmt.Errorf("keys: unknown command %q\n\n%s", cmd, keysUsage)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) { // -h printed the flags: not a failure
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("keys %s: unexpected argument %q", cmd, fs.Arg(0))
	}

	cfg.setDefaults()
	b, err := openBackend(ctx, cfg)
	if err != nil {
		return fmt.Errorf("keys %s: %w", cmd, err)
	}
	defer func() { err = errors.Join(err, b.close()) }()
	store := b.keys
	opts, err := cfg.authOptions()
	if err != nil {
		return err
	}
	authn := auth.NewAuthenticator(store, opts)
	defer func() { err = errors.Join(err, authn.Close(context.Background())) }()
	m := auth.NewManager(store, authn)

	spec := func() (auth.KeySpec, error) {
		s := auth.KeySpec{Name: *name, AppID: *app, TeamID: *team, Limit: auth.Limit{RPM: *rpm}}
		for _, sc := range splitList(*scopes) {
			s.Scopes = append(s.Scopes, auth.Scope(sc))
		}
		if *points != -1 {
			if *points <= 0 {
				return s, errors.New("-max-points must be positive, or -1 for unlimited")
			}
			s.Limit.MaxUsagePoints = *points
		}
		if *expires != "" {
			t, err := parseExpiry(*expires, time.Now())
			if err != nil {
				return s, err
			}
			s.Limit.ExpiredTime = t
		}
		p, err := auth.ParsePrefixes("allow-ip", splitList(*ips))
		if err != nil {
			return s, err
		}
		if len(p) > 0 {
			s.AllowedIPs = p
		}
		return s, nil
	}

	switch cmd {
	case "create":
		s, err := spec()
		if err != nil {
			return fmt.Errorf("keys create: %w", err)
		}
		k, secret, err := m.Create(ctx, s)
		if err != nil {
			return fmt.Errorf("keys create: %w", err)
		}
		fmt.Fprintf(out, "id:   %s\nname: %s\nkey:  %s\n\nThe key is shown this once; store it now.\n", k.ID, k.Name, secret)
	case "import":
		s, err := spec()
		if err != nil {
			return fmt.Errorf("keys import: %w", err)
		}
		k, err := m.Import(ctx, s, *keyValue)
		if err != nil {
			return fmt.Errorf("keys import: %w", err)
		}
		fmt.Fprintf(out, "id:   %s\nname: %s\nhint: %s\n", k.ID, k.Name, k.Hint)
	case "list":
		ks, err := m.List(ctx, auth.Filter{TeamID: *team, AppID: *app})
		if err != nil {
			return fmt.Errorf("keys list: %w", err)
		}
		return printKeys(out, ks, *asJSON)
	case "revoke":
		if *id == "" {
			return errors.New("keys revoke: -id is required")
		}
		if err := m.Revoke(ctx, "", *id, ""); err != nil {
			return fmt.Errorf("keys revoke: %w", err)
		}
		fmt.Fprintf(out, "revoked %s\n", *id)
	case "rotate":
		if *id == "" {
			return errors.New("keys rotate: -id is required")
		}
		k, secret, err := m.Rotate(ctx, "", *id, *grace, "")
		if err != nil {
			return fmt.Errorf("keys rotate: %w", err)
		}
		fmt.Fprintf(out, "id:   %s\nkey:  %s\n\nThe old key works for %s more. The new key is shown this once.\n", k.ID, secret, *grace)
	}
	return nil
}

func printKeys(out io.Writer, ks []*auth.Key, asJSON bool) error {
	if asJSON {
		vs := make([]auth.KeyView, 0, len(ks))
		for _, k := range ks {
			vs = append(vs, auth.View(k))
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(vs)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tHINT\tTEAM\tAPP\tSCOPES\tSOURCE\tDISABLED")
	for _, k := range ks {
		scopes := make([]string, len(k.Scopes))
		for i, s := range k.Scopes {
			scopes[i] = string(s)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%t\n", k.ID, k.Name, k.Hint, k.TeamID,
			orDash(k.AppID), strings.Join(scopes, ","), k.Source, k.Disabled)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseExpiry accepts an RFC 3339 time or a duration from now.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(d).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("-expires %q is neither an RFC 3339 time nor a positive duration", s)
}
