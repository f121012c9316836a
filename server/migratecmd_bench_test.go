package server

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/billing"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
)

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
