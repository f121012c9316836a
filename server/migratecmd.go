package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/billing"
	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/internal/panics"
	"github.com/chatgate/chatgate/internal/postgres"
	"github.com/chatgate/chatgate/queue"
	"github.com/chatgate/chatgate/shareauth"
)

const migrateUsage = `usage: migrate [-to DSN] [-force]

Copies every record of the data directory into Postgres: keys (hashes,
usage and times included, so every key keeps working), the audit trail,
apps and chat history, datasets with their collections, trained data (its
vectors copied, not computed again) and queued items, the ledger and its
bills, share links and their queued callbacks, then prints the rows of
each table. A server started on the database afterwards answers as the
data directory's did.

The target must hold no chatgate records; -force first drops its chatgate
tables, losing what they hold, and creates them anew. Stop the server
first: the command refuses a data directory that a server holds.`

// migrateBatch bounds the key usage and audit events written per call.
const migrateBatch = 1000

// domainTables matches the tables of chatgate's domains: each domain's
// Postgres store prefixes its tables with the domain's name.
// migrationTables matches the tables recording their migrations.
const (
	domainTables    = `^(auth|chat|billing|shareauth|dataset)_`
	migrationTables = `^chatgate_(auth|chat|billing|shareauth|dataset)_migrations$`
)

// MigrateCommand copies the bbolt data directory of cfg into the Postgres
// database that -to names (cfg.Storage.DSN by default), through the
// domains' stores, and writes the rows of each table to out. It refuses a
// target holding records unless -force, which first drops the target's
// chatgate tables and creates them anew, and fails at once when a running
// server holds the data directory.
func MigrateCommand(ctx context.Context, cfg Config, args []string, out io.Writer) (err error) {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() { fmt.Fprintf(out, "%s\n\nflags:\n", migrateUsage); fs.PrintDefaults() }
	to := fs.String("to", "", "Postgres DSN to copy into (default: storage.dsn, or CHATGATE_POSTGRES_DSN)")
	force := fs.Bool("force", false, "drop the target's chatgate tables first, losing what they hold, and create them anew")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *to != "" {
		cfg.Storage.DSN = *to
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("migrate: unexpected argument %q", fs.Arg(0))
	case cfg.Storage.DSN == "":
		return errors.New("migrate: -to (or storage.dsn, or CHATGATE_POSTGRES_DSN) must name the Postgres database to copy into")
	}
	cfg.setDefaults()
	// openBolt would create a missing data directory: copying an empty
	// one by mistake is better refused.
	if _, err := os.Stat(filepath.Join(cfg.Server.Data, DBFile)); err != nil {
		return fmt.Errorf("migrate: no data directory to copy: %w", err)
	}
	from, err := openBolt(cfg)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer func() { err = errors.Join(err, from.close()) }()
	// the stores say what they hold; the tables, which a forced copy
	// drops and which the report counts, are read on a pool of their own
	pool, err := postgres.Open(ctx, cfg.Storage.DSN)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer pool.Close()
	target, err := openPostgres(ctx, cfg)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer func() { err = errors.Join(err, target.close()) }()
	held, err := heldRecords(ctx, target)
	switch {
	case err != nil:
		return fmt.Errorf("migrate: reading the target: %w", err)
	case len(held) > 0 && !*force:
		return fmt.Errorf("migrate: the target already holds records (%s); nothing was copied. -force empties it first",
			strings.Join(held, ", "))
	case len(held) > 0:
		if err := dropDomainTables(ctx, pool); err != nil {
			return fmt.Errorf("migrate: emptying the target: %w", err)
		}
		fmt.Fprintf(out, "dropped the target's chatgate tables (it held %s) to create them anew (-force)\n", strings.Join(held, ", "))
		fresh, err := openPostgres(ctx, cfg)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		_ = target.close() // the pool of the stores on the tables dropped
		target = fresh
	}
	if err := copyBackend(ctx, from, target, out); err != nil {
		return fmt.Errorf("migrate: %w (the target holds part of the copy: run again with -force)", err)
	}
	return printTableRows(ctx, pool, out)
}

// domainTableNames returns the tables of the schema the pool's
// connections create tables in whose names match pattern.
func domainTableNames(ctx context.Context, pool *pgxpool.Pool, pattern string) ([]string, error) {
	rows, err := pool.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name ~ $1
		ORDER BY table_name`, pattern)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// dropDomainTables drops the chatgate tables and the tables recording
// their migrations, in one statement, so that opening the stores again
// makes them as in a new database (the seed rows of a migration
// included, which emptying the tables would lose).
func dropDomainTables(ctx context.Context, pool *pgxpool.Pool) error {
	tables, err := domainTableNames(ctx, pool, domainTables+`|`+migrationTables)
	if err != nil || len(tables) == 0 {
		return err
	}
	for i, t := range tables {
		tables[i] = pgx.Identifier{t}.Sanitize()
	}
	if _, err = pool.Exec(ctx, `DROP TABLE `+strings.Join(tables, ", ")); err != nil {
		return err
	}
	// and the functions of their triggers, which outlive them
	_, err = pool.Exec(ctx, `DROP FUNCTION IF EXISTS chatgate_chat_apps_notify()`)
	return err
}

// printTableRows writes how many rows each chatgate table holds.
func printTableRows(ctx context.Context, pool *pgxpool.Pool, out io.Writer) error {
	tables, err := domainTableNames(ctx, pool, domainTables)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	width := len("TABLE")
	for _, t := range tables {
		width = max(width, len(t))
	}
	fmt.Fprintf(out, "%-*s  %10s\n", width, "TABLE", "ROWS")
	for _, t := range tables {
		var n int64
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{t}.Sanitize()).Scan(&n); err != nil {
			return fmt.Errorf("migrate: counting %s: %w", t, err)
		}
		fmt.Fprintf(out, "%-*s  %10d\n", width, t, n)
	}
	return nil
}

// domainCopy is how one domain's records move between backends.
type domainCopy struct {
	domain string
	// held names the kinds of records the domain's stores of a backend
	// hold, none when they are empty.
	held func(context.Context, *backend) ([]string, error)
	// copy copies them into another backend's empty stores and says what
	// it copied.
	copy func(ctx context.Context, from, to *backend) (string, error)
}

// domainCopies are the domains' copies, in the order they run.
func domainCopies() []domainCopy {
	return []domainCopy{
		{domain: "auth", held: heldKeys, copy: copyKeys},
		{domain: "chat", held: heldApps, copy: copyChat},
		{domain: "billing", held: heldLedger, copy: copyLedger},
		{domain: "shareauth", held: heldLinks, copy: copyLinks},
		{domain: "dataset", held: heldDatasets, copy: copyDatasets},
	}
}

// heldRecords names the kinds of records b holds, each as "domain: kind".
func heldRecords(ctx context.Context, b *backend) ([]string, error) {
	var out []string
	for _, d := range domainCopies() {
		held, err := d.held(ctx, b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.domain, err)
		}
		for _, h := range held {
			out = append(out, d.domain+": "+h)
		}
	}
	return out, nil
}

// holding returns the names whose flag is set, in order: the kinds of
// records a held function found.
func holding(names []string, flags ...bool) []string {
	var out []string
	for i, f := range flags {
		if f {
			out = append(out, names[i])
		}
	}
	return out
}

// copyBackend copies every domain's records from one backend to another,
// whose stores must be empty, and says what it copied on out. It reads
// and writes through the domains' store interfaces and the capabilities
// a whole copy needs beside them, so any backend may be either end.
func copyBackend(ctx context.Context, from, to *backend, out io.Writer) error {
	for _, d := range domainCopies() {
		start := time.Now()
		what, err := d.copy(ctx, from, to)
		if err != nil {
			return fmt.Errorf("copying %s: %w", d.domain, err)
		}
		fmt.Fprintf(out, "%s: copied %s in %s\n", d.domain, what, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// heldKeys finds keys and audit events.
func heldKeys(ctx context.Context, b *backend) ([]string, error) {
	keys, err := b.keys.List(ctx, auth.Filter{})
	if err != nil {
		return nil, err
	}
	evs, err := b.keys.Audit(ctx, auth.AuditQuery{Limit: 1})
	return holding([]string{"keys", "audit events"}, len(keys) > 0, len(evs) > 0), err
}

// heldApps finds apps; history belongs to them.
func heldApps(ctx context.Context, b *backend) ([]string, error) {
	apps, err := b.chat.Apps(ctx, "")
	return holding([]string{"apps"}, len(apps) > 0), err
}

// errEnough stops a walk that has seen what it looked for.
var errEnough = errors.New("seen enough")

// heldLedger finds bills and usage records.
func heldLedger(ctx context.Context, b *backend) ([]string, error) {
	wl, err := whole[wholeLedger](b.ledger, "ledger")
	if err != nil {
		return nil, err
	}
	bills, err := wl.Bills(ctx)
	if err != nil {
		return nil, err
	}
	err = wl.EachRecord(ctx, func(billing.Record) error { return errEnough })
	if err != nil && !errors.Is(err, errEnough) {
		return nil, err
	}
	return holding([]string{"bills", "usage records"}, len(bills) > 0, err != nil), nil
}

// heldLinks finds share links and queued callbacks.
func heldLinks(ctx context.Context, b *backend) ([]string, error) {
	var (
		links []*shareauth.Link
		ds    []*shareauth.Delivery
	)
	wl, err := whole[wholeLinks](b.links, "share-link store")
	if err == nil {
		links, err = wl.AllLinks(ctx)
	}
	if err == nil {
		ds, err = wl.AllDeliveries(ctx)
	}
	return holding([]string{"share links", "finish callbacks"}, len(links) > 0, len(ds) > 0), err
}

// copyKeys copies keys with their hashes and usage, then the audit trail
// with its seqs. Keys are created without events: the trail is copied
// whole after them.
func copyKeys(ctx context.Context, from, to *backend) (string, error) {
	imp, err := whole[auth.AuditImporter](to.keys, "target key store")
	if err != nil {
		return "", err
	}
	keys, err := from.keys.List(ctx, auth.Filter{})
	if err != nil {
		return "", err
	}
	var usage []auth.Usage
	for _, k := range keys {
		if err := to.keys.Create(ctx, k, nil); err != nil {
			return "", fmt.Errorf("key %s: %w", k.ID, err)
		}
		if k.UsagePoints != 0 || !k.LastUsedTime.IsZero() {
			usage = append(usage, auth.Usage{KeyID: k.ID, Points: k.UsagePoints, LastUsed: k.LastUsedTime})
		}
	}
	for batch := range slices.Chunk(usage, migrateBatch) {
		if err := to.keys.AddUsage(ctx, batch); err != nil {
			return "", fmt.Errorf("key usage: %w", err)
		}
	}
	evs, err := from.keys.Audit(ctx, auth.AuditQuery{Limit: math.MaxInt})
	if err != nil {
		return "", err
	}
	slices.Reverse(evs) // oldest first, as they are numbered
	for batch := range slices.Chunk(evs, migrateBatch) {
		if err := imp.ImportAudit(ctx, batch); err != nil {
			return "", fmt.Errorf("audit trail: %w", err)
		}
	}
	return fmt.Sprintf("%d keys, %d audit events", len(keys), len(evs)), nil
}

// copyChat copies every team's apps and each app's conversations, a
// conversation's records in one turn.
func copyChat(ctx context.Context, from, to *backend) (string, error) {
	apps, err := from.chat.Apps(ctx, "")
	if err != nil {
		return "", err
	}
	convs, recs := 0, 0
	for _, a := range apps {
		if err := to.chat.PutApp(ctx, a); err != nil {
			return "", fmt.Errorf("app %s: %w", a.ID, err)
		}
		cs, _, err := from.chat.Conversations(ctx, a.TeamID, a.ID, 0, 0)
		if err != nil {
			return "", fmt.Errorf("conversations of app %s: %w", a.ID, err)
		}
		for _, c := range cs {
			rs, _, err := from.chat.Records(ctx, c.TeamID, c.AppID, c.ChatID, 0, 0)
			if err != nil {
				return "", fmt.Errorf("conversation %s: %w", c.ChatID, err)
			}
			if err := to.chat.AppendTurn(ctx, &c, rs); err != nil {
				return "", fmt.Errorf("conversation %s: %w", c.ChatID, err)
			}
			convs, recs = convs+1, recs+len(rs)
		}
	}
	return fmt.Sprintf("%d apps, %d conversations, %d records", len(apps), convs, recs), nil
}

// copyLedger copies the bills, then the records oldest first, which adds
// them up on their bills, keys and apps as they were.
func copyLedger(ctx context.Context, from, to *backend) (string, error) {
	wl, err := whole[wholeLedger](from.ledger, "ledger")
	if err != nil {
		return "", err
	}
	bills, err := copyList(ctx, wl.Bills, func(ctx context.Context, b billing.Bill) error { return to.ledger.CreateBill(ctx, &b) },
		func(b billing.Bill) string { return "bill " + b.ID })
	if err != nil {
		return "", err
	}
	var n atomic.Int64
	put := func(ctx context.Context, r billing.Record) error {
		if err := to.ledger.Record(ctx, &r); err != nil {
			return fmt.Errorf("record %s: %w", r.ID, err)
		}
		n.Add(1)
		return nil
	}
	err = fanOut(ctx, put, func(give func(billing.Record) error) error {
		return wl.EachRecord(ctx, func(r billing.Record) error {
			if r.BillID != "" {
				return put(ctx, r) // in order: a bill lists its items in the order first spent on
			}
			return give(r)
		})
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d bills, %d usage records", bills, n.Load()), nil
}

// copyLinks copies every team's share links, secrets and usage included,
// and every finish callback still to deliver, as it stands.
func copyLinks(ctx context.Context, from, to *backend) (string, error) {
	wl, err := whole[wholeLinks](from.links, "share-link store")
	if err != nil {
		return "", err
	}
	links, err := copyList(ctx, wl.AllLinks, to.links.PutLink, func(l *shareauth.Link) string { return "link " + l.ID })
	if err != nil {
		return "", err
	}
	ds, err := copyList(ctx, wl.AllDeliveries, to.links.Enqueue, func(d *shareauth.Delivery) string { return "callback " + d.ID })
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d links, %d queued callbacks", links, ds), nil
}

// heldDatasets finds datasets, which hold the collections, data and
// queued items, and training usage not yet in the ledger.
func heldDatasets(ctx context.Context, b *backend) ([]string, error) {
	var (
		dss   []*dataset.Dataset
		usage []dataset.UsageRecord
	)
	wd, err := whole[wholeDatasets](b.datasets, "dataset store")
	if err == nil {
		dss, err = wd.AllDatasets(ctx)
	}
	if err == nil {
		usage, err = b.datasets.PendingUsage(ctx, 1)
	}
	return holding([]string{"datasets", "training usage"}, len(dss) > 0, len(usage) > 0), err
}

// copyDatasets copies every team's datasets with their collections, data
// (its vectors copied, not computed again) and queued items, then the
// usage of training that the ledger has not got yet. The vectors are read
// first, in memory, as a server holds them.
func copyDatasets(ctx context.Context, from, to *backend) (string, error) {
	src, err := whole[wholeDatasets](from.datasets, "dataset store")
	if err != nil {
		return "", err
	}
	imp, err := whole[dataset.DataImporter](to.datasets, "target dataset store")
	if err != nil {
		return "", err
	}
	vecs := map[string][]dataset.Vector{} // by data id: a vector's id is its data's, or that and "/n"
	nvecs := 0
	err = from.datasets.EachVector(ctx, func(_ string, v dataset.Vector) error {
		id, _, _ := strings.Cut(v.ID, "/")
		vecs[id] = append(vecs[id], v)
		nvecs++
		return nil
	})
	if err != nil {
		return "", err
	}
	dss, err := src.AllDatasets(ctx)
	if err != nil {
		return "", err
	}
	var n struct{ colls, data, items int }
	for _, ds := range dss {
		if err := to.datasets.PutDataset(ctx, ds); err != nil {
			return "", fmt.Errorf("dataset %s: %w", ds.ID, err)
		}
		colls, err := from.datasets.Collections(ctx, ds.ID)
		if err != nil {
			return "", fmt.Errorf("collections of dataset %s: %w", ds.ID, err)
		}
		for _, c := range colls {
			if err := to.datasets.PutCollection(ctx, c); err != nil {
				return "", fmt.Errorf("collection %s: %w", c.ID, err)
			}
			data, items, err := copyCollection(ctx, from, to, src, imp, c.ID, vecs)
			if err != nil {
				return "", fmt.Errorf("collection %s: %w", c.ID, err)
			}
			n.colls, n.data, n.items = n.colls+1, n.data+data, n.items+items
		}
	}
	usage, err := from.datasets.PendingUsage(ctx, math.MaxInt)
	if err != nil {
		return "", err
	}
	// Commit puts a Trained's usage in the outbox whether or not its item
	// is queued: here none is.
	if _, err := to.datasets.Commit(ctx, []dataset.Trained{{Usage: usage}}); err != nil {
		return "", fmt.Errorf("training usage: %w", err)
	}
	return fmt.Sprintf("%d datasets, %d collections, %d data items, %d vectors, %d queued items, %d training usage records",
		len(dss), n.colls, n.data, nvecs, n.items, len(usage)), nil
}

// copyCollection copies a collection's data and queued items. A failed
// item has given up its q, which data or another item may hold since, so
// each failed item is queued and failed again on its own, before the
// data; the other items' qs are their own.
func copyCollection(ctx context.Context, from, to *backend, src wholeDatasets, imp dataset.DataImporter, collID string,
	vecs map[string][]dataset.Vector) (data, items int, err error) {
	queued, err := src.TrainingItems(ctx, collID)
	if err != nil {
		return 0, 0, err
	}
	waiting := queued[:0:0]
	for _, it := range queued {
		if !it.Failed {
			waiting = append(waiting, it)
			continue
		}
		again := *it
		again.Failed = false
		if _, err := to.datasets.Enqueue(ctx, []*dataset.TrainingItem{&again}); err != nil {
			return 0, 0, fmt.Errorf("item %s: %w", it.ID, err)
		}
		if err := to.datasets.Reschedule(ctx, it.ID, queue.Attempt{Attempts: it.Attempts, Err: it.LastError, Failed: true}); err != nil {
			return 0, 0, fmt.Errorf("item %s: %w", it.ID, err)
		}
	}
	all, _, err := from.datasets.DataList(ctx, collID, 0, math.MaxInt)
	if err != nil {
		return 0, 0, err
	}
	err = fanOut(ctx, func(ctx context.Context, d *dataset.Data) error {
		if err := imp.ImportData(ctx, d, vecs[d.ID]); err != nil {
			return fmt.Errorf("data %s: %w", d.ID, err)
		}
		return nil
	}, func(give func(*dataset.Data) error) error {
		for _, d := range all {
			if err := give(d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	repeats, err := to.datasets.Enqueue(ctx, waiting)
	switch {
	case err != nil:
		return 0, 0, err
	case len(repeats) > 0:
		return 0, 0, fmt.Errorf("item %s: its q is taken", waiting[repeats[0]].ID)
	}
	return len(all), len(queued), nil
}

// wholeLedger is a ledger a copy can read whole.
type wholeLedger interface {
	billing.BillLister
	billing.RecordSource
}

// wholeDatasets is a dataset store a copy can read whole: its vectors
// come from its VectorSource.
type wholeDatasets interface {
	dataset.DatasetLister
	dataset.TrainingLister
}

// wholeLinks is a share-link store a copy can read whole.
type wholeLinks interface {
	shareauth.LinkLister
	shareauth.DeliveryLister
}

// whole is store as the capability W a copy reads or writes it whole
// through, or an error naming what store is when it has not got it.
func whole[W any](store any, what string) (W, error) {
	w, ok := store.(W)
	if !ok {
		return w, fmt.Errorf("the %s cannot hand out all it holds", what)
	}
	return w, nil
}

// copyWorkers is how many records a copy writes at once where the order
// they are written in makes no difference to what the target answers.
const copyWorkers = 8

// fanOut runs feed, which hands records to give, and writes each with put
// on one of copyWorkers goroutines. It returns the first error of feed or
// of put, after which the records still to write are skipped; a put that
// panics fails the copy rather than the process.
func fanOut[T any](ctx context.Context, put func(context.Context, T) error, feed func(give func(T) error) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan T)
	var wg sync.WaitGroup
	for range copyWorkers {
		wg.Go(func() {
			for v := range work {
				if ctx.Err() == nil {
					if err := panics.Catch(func() error { return put(ctx, v) }); err != nil {
						cancel(err)
					}
				}
			}
		})
	}
	err := feed(func(v T) error {
		select {
		case work <- v:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	close(work)
	wg.Wait()
	if err == nil {
		err = context.Cause(ctx)
	}
	return err
}

// copyList writes each record list returns with put, naming the one that
// fails by name, and returns how many it wrote.
func copyList[T any](ctx context.Context, list func(context.Context) ([]T, error), put func(context.Context, T) error,
	name func(T) string) (int, error) {
	xs, err := list(ctx)
	if err != nil {
		return 0, err
	}
	for _, x := range xs {
		if err := put(ctx, x); err != nil {
			return 0, fmt.Errorf("%s: %w", name(x), err)
		}
	}
	return len(xs), nil
}
