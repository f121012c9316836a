package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/billing"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/internal/panics"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
	"github.com/chatgate/chatgate/queue"
	"github.com/chatgate/chatgate/shareauth"
)

// snapshot is everything a backend holds, read through the domains'
// store interfaces and the capabilities a copy reads through, as JSON.
// Fields the records keep out of their JSON (a key's usage, a link's
// secret) are beside them.
type snapshot struct {
	Keys []struct {
		Key      *auth.Key
		Points   float64
		LastUsed time.Time
		Resolves []string // the key each of its hashes resolves to
	}
	Audit []auth.AuditEvent
	Apps  []*chat.App
	Convs []struct {
		Conv    chat.Conversation
		Records []chat.Record
	}
	Bills     []*billing.BillDetail
	Records   []billing.Record
	KeyPoints map[string]float64
	AppPoints map[string]float64
	Usage     map[string]*billing.Summary // per team
	Links     []struct {
		Link   *shareauth.Link
		Secret string
	}
	Deliveries []*shareauth.Delivery
	Pending    map[string]int
	Datasets   []snapDataset
	// TrainingUsage is the usage outbox of training.
	TrainingUsage []dataset.UsageRecord
}

// snapDataset is a dataset with all it holds.
type snapDataset struct {
	Dataset     *dataset.Dataset
	Collections []struct {
		Collection     *dataset.Collection
		Data           []snapData
		Items          []*dataset.TrainingItem
		Queued, Failed int
	}
}

// snapData is a data item with its vectors, by id.
type snapData struct {
	Data    *dataset.Data
	Vectors []dataset.Vector
}

// settle rounds a total to 12 significant digits. Totals are sums the
// store computes: the Postgres ledger adds a total's slots in an order of
// its own, so a total may differ from the bbolt ledger's running sum in
// its last bits, though every record's points are copied exactly.
func settle(x float64) float64 {
	if x == 0 {
		return 0
	}
	scale := math.Pow(10, 11-math.Floor(math.Log10(math.Abs(x))))
	return math.Round(x*scale) / scale
}

// settleSummary settles the totals of sum.
func settleSummary(sum *billing.Summary) {
	sum.Total.Points = settle(sum.Total.Points)
	for i := range sum.ByDay {
		sum.ByDay[i].Points = settle(sum.ByDay[i].Points)
	}
	for i := range sum.ByKey {
		sum.ByKey[i].Points = settle(sum.ByKey[i].Points)
	}
}

// snap reads b whole, its ledger's totals settled.
func snap(t *testing.T, b *backend) *snapshot {
	t.Helper()
	ctx := context.Background()
	must := func(err error) { noErr(t, err) }
	s := &snapshot{KeyPoints: map[string]float64{}, AppPoints: map[string]float64{},
		Usage: map[string]*billing.Summary{}, Pending: map[string]int{}}
	keys, err := b.keys.List(ctx, auth.Filter{})
	must(err)
	for _, k := range keys {
		var resolves []string
		for _, h := range append([]auth.Hash{k.Hash}, retiredHashes(k)...) {
			r, err := b.keys.GetByHash(ctx, h)
			must(err)
			resolves = append(resolves, r.ID)
		}
		s.Keys = append(s.Keys, struct {
			Key      *auth.Key
			Points   float64
			LastUsed time.Time
			Resolves []string
		}{k, k.UsagePoints, k.LastUsedTime, resolves})
	}
	s.Audit, err = b.keys.Audit(ctx, auth.AuditQuery{Limit: math.MaxInt})
	must(err)
	s.Apps, err = b.chat.Apps(ctx, "")
	must(err)
	for _, a := range s.Apps {
		cs, _, err := b.chat.Conversations(ctx, a.TeamID, a.ID, 0, 0)
		must(err)
		for _, c := range cs {
			rs, _, err := b.chat.Records(ctx, c.TeamID, c.AppID, c.ChatID, 0, 0)
			must(err)
			s.Convs = append(s.Convs, struct {
				Conv    chat.Conversation
				Records []chat.Record
			}{c, rs})
		}
	}
	bills, err := b.ledger.(billing.BillLister).Bills(ctx)
	must(err)
	for _, bl := range bills {
		d, err := b.ledger.Bill(ctx, bl.ID)
		must(err)
		d.TotalPoints = settle(d.TotalPoints)
		for i := range d.Items {
			d.Items[i].Points = settle(d.Items[i].Points)
		}
		s.Bills = append(s.Bills, d)
	}
	must(b.ledger.(billing.RecordSource).EachRecord(ctx, func(r billing.Record) error {
		s.Records = append(s.Records, r)
		if s.Usage[r.TeamID] == nil {
			sum, err := b.ledger.Summary(ctx, billing.Filter{TeamID: r.TeamID})
			if err != nil {
				return err
			}
			settleSummary(sum)
			s.Usage[r.TeamID] = sum
		}
		if r.AppID != "" {
			p, err := b.ledger.AppPoints(ctx, r.TeamID, r.AppID)
			if err != nil {
				return err
			}
			s.AppPoints[r.TeamID+"/"+r.AppID] = settle(p)
		}
		return nil
	}))
	s.KeyPoints, err = b.ledger.KeyPoints(ctx)
	must(err)
	for k, p := range s.KeyPoints {
		s.KeyPoints[k] = settle(p)
	}
	links, err := b.links.(shareauth.LinkLister).AllLinks(ctx)
	must(err)
	for _, l := range links {
		s.Links = append(s.Links, struct {
			Link   *shareauth.Link
			Secret string
		}{l, l.Secret})
		s.Pending[l.ID], err = b.links.Pending(ctx, l.ID)
		must(err)
	}
	s.Deliveries, err = b.links.(shareauth.DeliveryLister).AllDeliveries(ctx)
	must(err)
	if b.datasets != nil {
		s.Datasets, s.TrainingUsage = snapDatasets(t, b.datasets)
	}
	return s
}

// snapDatasets reads every dataset whole, and the training usage outbox.
func snapDatasets(t *testing.T, st dataset.Store) ([]snapDataset, []dataset.UsageRecord) {
	t.Helper()
	ctx := context.Background()
	vecs := map[string][]dataset.Vector{}
	noErr(t, st.EachVector(ctx, func(_ string, v dataset.Vector) error {
		id, _, _ := strings.Cut(v.ID, "/")
		vecs[id] = append(vecs[id], v)
		return nil
	}))
	dss, err := st.(dataset.DatasetLister).AllDatasets(ctx)
	noErr(t, err)
	var out []snapDataset
	for _, ds := range dss {
		sd := snapDataset{Dataset: ds}
		colls, err := st.Collections(ctx, ds.ID)
		noErr(t, err)
		for _, c := range colls {
			all, _, err := st.DataList(ctx, c.ID, 0, math.MaxInt)
			noErr(t, err)
			var data []snapData
			for _, d := range all {
				vs := vecs[d.ID]
				sort.Slice(vs, func(i, j int) bool { return vs[i].ID < vs[j].ID })
				data = append(data, snapData{d, vs})
			}
			items, err := st.(dataset.TrainingLister).TrainingItems(ctx, c.ID)
			noErr(t, err)
			if len(items) == 0 {
				items = nil // none, as a nil or an empty slice
			}
			queued, failed, err := st.TrainingCounts(ctx, c.ID)
			noErr(t, err)
			sd.Collections = append(sd.Collections, struct {
				Collection     *dataset.Collection
				Data           []snapData
				Items          []*dataset.TrainingItem
				Queued, Failed int
			}{c, data, items, queued, failed})
		}
		out = append(out, sd)
	}
	usage, err := st.PendingUsage(ctx, math.MaxInt)
	noErr(t, err)
	if len(usage) == 0 {
		usage = nil
	}
	return out, usage
}

// noErr fails t at once on an error.
func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func retiredHashes(k *auth.Key) []auth.Hash {
	var hs []auth.Hash
	for _, r := range k.Retired {
		hs = append(hs, r.Hash)
	}
	return hs
}

// rfc3339 matches the times JSON holds.
var rfc3339 = regexp.MustCompile(`"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"`)

// toMicros rewrites the times in JSON doc as Postgres keeps them: to the
// microsecond, in UTC.
func toMicros(t *testing.T, doc string) string {
	return rfc3339.ReplaceAllStringFunc(doc, func(q string) string {
		at, err := time.Parse(time.RFC3339Nano, strings.Trim(q, `"`))
		if err != nil {
			t.Fatalf("time %s: %v", q, err)
		}
		return `"` + at.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano) + `"`
	})
}

func (s *snapshot) json(t *testing.T) string {
	t.Helper()
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sameText fails t, showing the first difference, unless a and b are equal.
func sameText(t *testing.T, what, a, b string) {
	t.Helper()
	if a == b {
		return
	}
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			lo := max(i-8, 0)
			t.Fatalf("%s differ at line %d:\n%s\n<<< %s\n>>> %s", what, i+1, strings.Join(al[lo:i], "\n"), al[i], bl[i])
		}
	}
	t.Fatalf("%s differ in length: %d and %d lines", what, len(al), len(bl))
}

// fillBolt writes records of every kind into b through its stores, with
// what a long-lived data directory holds: several teams, a rotated key in
// its grace period, a trimmed audit trail (its seqs not starting at 1),
// usage, history, bills, failed and orphaned callbacks.
func fillBolt(t *testing.T, b *backend) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) { noErr(t, err) }
	t0 := time.Date(2026, 5, 4, 3, 2, 1, 123456789, time.UTC)
	for i, k := range []*auth.Key{
		{ID: "k1", Name: "one", TeamID: "default", Scopes: auth.Scopes{auth.ScopeAdmin}, Source: auth.SourceGenerated,
			Hash: auth.HashKey("secret-1"), Hint: "cg-…0001", CreateTime: t0, UpdateTime: t0},
		{ID: "k2", Name: "two", TeamID: "team-b", AppID: "app-b", Scopes: auth.Scopes{auth.ScopeChat}, Source: auth.SourceImported,
			Limit: auth.Limit{ExpiredTime: t0.Add(time.Hour), MaxUsagePoints: 10, RPM: 60}, Hash: auth.HashKey("secret-2"),
			Retired: []auth.RetiredHash{{Hash: auth.HashKey("secret-2-old"), Until: t0.Add(24 * time.Hour)}},
			Meta:    map[string]string{"dm_policy": "open"}, Hint: "sec…t-2", CreateTime: t0.Add(time.Second), UpdateTime: t0.Add(time.Minute)},
	} {
		must(b.keys.Create(ctx, k, &auth.AuditEvent{Time: k.CreateTime, Action: auth.AuditKeyCreated, KeyID: k.ID, TeamID: k.TeamID}))
		must(b.keys.AppendAudit(ctx, []auth.AuditEvent{{Time: t0.Add(time.Duration(i) * time.Second), Action: auth.AuditAuthFailed,
			Reason: "invalid_api_key", RemoteIP: "192.0.2.9", Count: 3 + i}}))
	}
	if _, err := b.keys.TrimAudit(ctx, time.Time{}, 3); err != nil {
		t.Fatal(err)
	}
	must(b.keys.AddUsage(ctx, []auth.Usage{{KeyID: "k2", Points: 1.25, LastUsed: t0.Add(2 * time.Minute)}}))

	for _, a := range []*chat.App{
		{ID: "main", Name: "Main", TeamID: "default", Model: chat.ExtractiveModelName, CreateTime: t0, UpdateTime: t0},
		{ID: "app-b", Name: "B", TeamID: "team-b", Model: "m", DatasetIDs: []string{"d1"}, CreateTime: t0, UpdateTime: t0.Add(time.Second)},
		{ID: "main", Name: "B's main", TeamID: "team-b", Model: "m", CreateTime: t0, UpdateTime: t0},
	} {
		must(b.chat.PutApp(ctx, a))
	}
	for i, c := range []chat.Conversation{
		{TeamID: "team-b", AppID: "app-b", ChatID: "c1", Title: "first", Variables: map[string]any{"x": "y"}, KeyID: "k2",
			CreateTime: t0, UpdateTime: t0.Add(time.Second)},
		{TeamID: "default", AppID: "main", ChatID: "c2", Title: "shared", ShareID: "l1", OutLinkUID: "visitor",
			CreateTime: t0, UpdateTime: t0.Add(2 * time.Second)},
	} {
		for turn := range 2 {
			at := t0.Add(time.Duration(10*i+turn) * time.Second)
			c.UpdateTime = at
			must(b.chat.AppendTurn(ctx, &c, []chat.Record{{DataID: "h" + string(rune('0'+turn)), Obj: "Human", Value: "q", Time: at},
				{DataID: "a" + string(rune('0'+turn)), Obj: "AI", Value: "a\x00nul", Time: at.Add(time.Millisecond),
					ResponseData: []chat.ModuleResponse{{ModuleName: "AI Chat", Price: 0.5, Tokens: 11}}}}))
		}
	}

	bill := &billing.Bill{ID: "bill-1", TeamID: "team-b", Name: "import", DatasetID: "d1", CreateTime: t0}
	must(b.ledger.CreateBill(ctx, bill))
	must(b.ledger.CreateBill(ctx, &billing.Bill{ID: "bill-0", TeamID: "default", Name: "empty", CreateTime: t0}))
	for i, r := range []billing.Record{
		{TeamID: "team-b", KeyID: "k2", DatasetID: "d1", BillID: "bill-1", Source: billing.SourceTraining, Module: "embedding", Model: "local", InputTokens: 100, Points: 0.25},
		{TeamID: "team-b", KeyID: "k2", DatasetID: "d1", BillID: "bill-1", Source: billing.SourceTraining, Module: "qa", Model: "m", InputTokens: 10, OutputTokens: 20, Points: 1.5},
		{TeamID: "default", KeyID: "k1", AppID: "main", ShareID: "l1", Source: billing.SourceChat, Module: "AI Chat", Model: "m", InputTokens: 5, OutputTokens: 6, Points: 0.5},
		{TeamID: "default", KeyID: "k1", DatasetID: "d2", Source: billing.SourceSearch, Module: "search", Model: "local", InputTokens: 2, Points: 0.125},
	} {
		r.ID, r.Time = "r"+string(rune('a'+i)), t0.Add(time.Duration(i)*time.Hour)
		must(b.ledger.Record(ctx, &r))
	}

	for _, l := range []*shareauth.Link{
		{ID: "l1", TeamID: "default", AppID: "main", Name: "public", Limit: shareauth.Limit{QPM: 5, HookURL: "https://auth.example.com"},
			ResponseDetail: true, Secret: "cgs_1", UsagePoints: 0.5, LastUsedTime: t0.Add(time.Hour), CreateTime: t0},
		{ID: "l2", TeamID: "team-b", AppID: "app-b", Name: "b", Limit: shareauth.Limit{ExpiredTime: t0.Add(48 * time.Hour), MaxUsagePoints: 3},
			Secret: "cgs_2", CreateTime: t0.Add(time.Second)},
	} {
		must(b.links.PutLink(ctx, l))
	}
	for _, d := range []*shareauth.Delivery{
		{ID: "d1", ShareID: "l1", Path: "/shareAuth/finish", Body: []byte(`{"token":"v"}`), NextAttempt: t0, CreateTime: t0},
		{ID: "d2", ShareID: "l1", Path: "/shareAuth/finish", Body: []byte(`{"token":"w"}`), NextAttempt: t0, CreateTime: t0.Add(time.Second)},
		{ID: "d3", ShareID: "gone", Path: "/shareAuth/finish", Body: []byte(`{}`), NextAttempt: t0, CreateTime: t0.Add(2 * time.Second)},
	} {
		must(b.links.Enqueue(ctx, d))
	}
	must(b.links.Reschedule(ctx, "d2", queue.Attempt{Attempts: 4, Next: t0.Add(time.Hour), Err: "auth host answered 503"}))
	fillDatasets(t, b.datasets, t0)
}

// fillDatasets writes datasets of two teams with trained data (vectors
// for q and indexes), a queued item, a failed one whose q data has taken
// since, and training usage the ledger has not got yet.
func fillDatasets(t *testing.T, st dataset.Store, t0 time.Time) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) { noErr(t, err) }
	must(st.PutDataset(ctx, &dataset.Dataset{ID: "ds1", TeamID: "default", Name: "kb", VectorModel: "local", CreateTime: t0}))
	must(st.PutDataset(ctx, &dataset.Dataset{ID: "ds2", TeamID: "team-b", Name: "kb b", VectorModel: "local", CreateTime: t0}))
	for _, c := range []*dataset.Collection{
		{ID: "c1", TeamID: "default", DatasetID: "ds1", Name: "faq", Type: dataset.CollectionVirtual, TrainingType: dataset.ModeIndex, CreateTime: t0},
		{ID: "c2", TeamID: "team-b", DatasetID: "ds2", Name: "b", Type: dataset.CollectionVirtual, TrainingType: dataset.ModeIndex, ChunkSize: 512, CreateTime: t0.Add(time.Second)},
	} {
		must(st.PutCollection(ctx, c))
	}
	item := func(id, coll, ds, team, q string) *dataset.TrainingItem {
		return &dataset.TrainingItem{ID: id, TeamID: team, DatasetID: ds, CollectionID: coll, Mode: dataset.ModeIndex, Q: q,
			A: "a " + q, BillID: "bill-1", KeyID: "k2", NextAttempt: t0, CreateTime: t0}
	}
	failed := item("i-failed", "c1", "ds1", "default", "the same q")
	if _, err := st.Enqueue(ctx, []*dataset.TrainingItem{failed, item("i1", "c1", "ds1", "default", "q one"),
		item("i2", "c2", "ds2", "team-b", "q two"), item("i-wait", "c1", "ds1", "default", "still queued")}); err != nil {
		t.Fatal(err)
	}
	must(st.Reschedule(ctx, "i-failed", queue.Attempt{Attempts: 5, Err: "embedder down", Failed: true}))
	must(st.Reschedule(ctx, "i-wait", queue.Attempt{Attempts: 1, Next: t0.Add(time.Hour), Err: "slow"}))
	if _, err := st.Enqueue(ctx, []*dataset.TrainingItem{item("i3", "c1", "ds1", "default", "the same q")}); err != nil {
		t.Fatal(err)
	}
	var done []dataset.Trained
	for i, it := range []struct{ id, coll, ds, team, q string }{
		{"i1", "c1", "ds1", "default", "q one"}, {"i2", "c2", "ds2", "team-b", "q two"}, {"i3", "c1", "ds1", "default", "the same q"},
	} {
		at := t0.Add(time.Duration(i+1)*time.Minute + time.Duration(i)*time.Nanosecond)
		d := &dataset.Data{ID: it.id, TeamID: it.team, DatasetID: it.ds, CollectionID: it.coll, Q: it.q, A: "a " + it.q,
			Indexes: []string{"extra " + it.q}, CreateTime: at, UpdateTime: at}
		done = append(done, dataset.Trained{ItemID: it.id, Data: []*dataset.Data{d},
			Vectors: []dataset.Vector{{ID: it.id, Values: []float32{float32(i), 0.5, -0.25}}, {ID: it.id + "/1", Values: []float32{1, float32(i), 1e-7}}},
			Usage: []dataset.UsageRecord{{ID: "u-" + it.id, TeamID: it.team, KeyID: "k2", DatasetID: it.ds, CollectionID: it.coll,
				BillID: "bill-1", Module: "embedding", Model: "local", InputTokens: 7 + i, Items: 1, Time: at}}})
	}
	if _, err := st.Commit(ctx, done); err != nil {
		t.Fatal(err)
	}
	must(st.ClearUsage(ctx, []string{"u-i2"})) // the recorder has had this one
}

// openTestBolt opens a bbolt backend in a new directory, closed at the
// end of t.
func openTestBolt(t *testing.T) *backend {
	t.Helper()
	cfg := Config{}
	cfg.Server.Data = t.TempDir()
	b, err := openBolt(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.close() })
	return b
}

// A copy between two backends through the stores is exact: the memory
// stores keep nanoseconds, so the snapshots are equal to the byte.
func TestCopyBackendExact(t *testing.T) {
	from := openTestBolt(t)
	fillBolt(t, from)
	to := &backend{keys: auth.NewMemoryStore(), chat: chat.NewMemoryStore(), ledger: billing.NewMemoryLedger(),
		links: shareauth.NewMemoryStore(), datasets: dataset.NewMemoryStore()}
	if err := copyBackend(context.Background(), from, to, io.Discard); err != nil {
		t.Fatal(err)
	}
	want, got := snap(t, from), snap(t, to)
	if len(want.Keys) != 2 || len(want.Apps) != 3 || len(want.Convs) != 2 || len(want.Bills) != 2 || len(want.Records) != 4 ||
		len(want.Links) != 2 || len(want.Deliveries) != 3 || len(want.Datasets) != 2 || len(want.TrainingUsage) != 2 ||
		len(want.Datasets[0].Collections[0].Data) != 2 || len(want.Datasets[0].Collections[0].Items) != 2 {
		t.Fatalf("the source holds less than was written: %s", want.json(t))
	}
	if len(want.Audit) == 0 || want.Audit[len(want.Audit)-1].Seq == 1 {
		t.Fatalf("the source trail was to be trimmed: %+v", want.Audit)
	}
	sameText(t, "the snapshots of the source and the copy", want.json(t), got.json(t))
	// the copy numbers what comes next after what it copied
	ev := auth.AuditEvent{Time: time.Now(), Action: auth.AuditAuthFailed}
	if err := to.keys.AppendAudit(context.Background(), []auth.AuditEvent{ev}); err != nil {
		t.Fatal(err)
	}
	if evs, _ := to.keys.Audit(context.Background(), auth.AuditQuery{Limit: 1}); evs[0].Seq != want.Audit[0].Seq+1 {
		t.Fatalf("the next event after the copy got seq %d; want %d", evs[0].Seq, want.Audit[0].Seq+1)
	}
}

// The same copy into the Postgres stores reads back the same, to the
// microsecond: a trimmed trail's seqs, failed and orphaned callbacks, a
// failed item whose q data has taken since, queued items' state.
func TestCopyBackendToPostgres(t *testing.T) {
	cfg := Config{}
	cfg.Storage.DSN = pgtest.DSN(t)
	from := openTestBolt(t)
	fillBolt(t, from)
	to, err := openPostgres(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer to.close()
	if held, err := heldRecords(context.Background(), to); err != nil || len(held) != 0 {
		t.Fatalf("a new database holds %v, %v", held, err)
	}
	if err := copyBackend(context.Background(), from, to, io.Discard); err != nil {
		t.Fatal(err)
	}
	sameText(t, "the snapshots of the source and the copy in Postgres", toMicros(t, snap(t, from).json(t)), toMicros(t, snap(t, to).json(t)))
	held, err := heldRecords(context.Background(), to)
	if err != nil || len(held) != 9 {
		t.Fatalf("the copy holds %v, %v; want every kind of record", held, err)
	}
}

// fanOut writes every record fed, and stops at the first failure: of a
// write, of a write that panics, or of the feed.
func TestFanOut(t *testing.T) {
	ctx := context.Background()
	feed := func(n int) func(give func(int) error) error {
		return func(give func(int) error) error {
			for i := range n {
				if err := give(i); err != nil {
					return err
				}
			}
			return nil
		}
	}
	var sum atomic.Int64
	if err := fanOut(ctx, func(_ context.Context, i int) error { sum.Add(int64(i)); return nil }, feed(1000)); err != nil || sum.Load() != 999*1000/2 {
		t.Fatalf("fanOut wrote a sum of %d, %v; want %d", sum.Load(), err, 999*1000/2)
	}
	bad := errors.New("bad record")
	if err := fanOut(ctx, func(_ context.Context, i int) error {
		if i == 500 {
			return bad
		}
		return nil
	}, feed(100000)); !errors.Is(err, bad) {
		t.Fatalf("fanOut with a failing write: %v", err)
	}
	if err := fanOut(ctx, func(_ context.Context, i int) error {
		if i == 7 {
			panic("boom")
		}
		return nil
	}, feed(100)); !errors.As(err, new(*panics.Error)) {
		t.Fatalf("fanOut with a write that panics: %v", err)
	}
	if err := fanOut(ctx, func(context.Context, int) error { return nil }, func(func(int) error) error { return bad }); !errors.Is(err, bad) {
		t.Fatalf("fanOut with a failing feed: %v", err)
	}
}

// BenchmarkCopyToPostgres copies a data directory of 200 keys, 5,000
// audit events, 100 conversations of 20 records, 10,000 usage records and
// 5,000 trained data items (256-dimension vectors) into a new Postgres
// schema, and reports the records copied per second.
func BenchmarkCopyToPostgres(b *testing.B) {
	ctx := context.Background()
	cfg := Config{}
	cfg.Server.Data = b.TempDir()
	from, err := openBolt(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer from.close()
	records := benchFill(b, from)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		tcfg := Config{}
		tcfg.Storage.DSN = pgtest.DSN(b)
		to, err := openPostgres(ctx, tcfg)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := copyBackend(ctx, from, to, io.Discard); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = to.close()
		b.StartTimer()
	}
	b.ReportMetric(float64(records*b.N)/b.Elapsed().Seconds(), "records/s")
}

// benchFill writes the benchmark's data directory and returns how many
// records it holds.
func benchFill(b *testing.B, be *backend) int {
	ctx := context.Background()
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6789, time.UTC)
	for i := range 200 {
		k := &auth.Key{ID: fmt.Sprintf("k%03d", i), Name: "k", TeamID: "default", Scopes: auth.Scopes{auth.ScopeChat},
			Source: auth.SourceGenerated, Hash: auth.HashKey(fmt.Sprint("secret-", i)), Hint: "h", CreateTime: t0, UpdateTime: t0}
		must(be.keys.Create(ctx, k, nil))
	}
	evs := make([]auth.AuditEvent, 5000)
	for i := range evs {
		evs[i] = auth.AuditEvent{Time: t0.Add(time.Duration(i) * time.Second), Action: auth.AuditAuthFailed, Reason: "invalid_api_key", Count: 1}
	}
	must(be.keys.AppendAudit(ctx, evs))
	must(be.chat.PutApp(ctx, &chat.App{ID: "main", Name: "Main", TeamID: "default", Model: chat.ExtractiveModelName, CreateTime: t0, UpdateTime: t0}))
	for c := range 100 {
		conv := &chat.Conversation{TeamID: "default", AppID: "main", ChatID: fmt.Sprint("c", c), CreateTime: t0, UpdateTime: t0}
		recs := make([]chat.Record, 20)
		for i := range recs {
			recs[i] = chat.Record{DataID: fmt.Sprint(c, "-", i), Obj: "Human", Value: "a question of some length", Time: t0}
		}
		must(be.chat.AppendTurn(ctx, conv, recs))
	}
	for i := range 10000 {
		must(be.ledger.Record(ctx, &billing.Record{ID: fmt.Sprint("r", i), TeamID: "default", KeyID: fmt.Sprintf("k%03d", i%200),
			Source: billing.SourceChat, Module: "AI Chat", Model: "m", InputTokens: 10, Points: 0.25, Time: t0.Add(time.Duration(i))}))
	}
	must(be.datasets.PutDataset(ctx, &dataset.Dataset{ID: "ds", TeamID: "default", Name: "kb", VectorModel: "local", CreateTime: t0}))
	must(be.datasets.PutCollection(ctx, &dataset.Collection{ID: "c", TeamID: "default", DatasetID: "ds", Name: "c",
		Type: dataset.CollectionVirtual, CreateTime: t0}))
	imp := be.datasets.(dataset.DataImporter)
	for i := range 5000 {
		id := fmt.Sprintf("d%05d", i)
		v := make([]float32, 256)
		for j := range v {
			v[j] = float32(i*j%97) / 97
		}
		must(imp.ImportData(ctx, &dataset.Data{ID: id, TeamID: "default", DatasetID: "ds", CollectionID: "c",
			Q: "question " + id, A: "answer", CreateTime: t0, UpdateTime: t0}, []dataset.Vector{{ID: id, Values: v}}))
	}
	return 200 + 5000 + 100*20 + 10000 + 5000
}
