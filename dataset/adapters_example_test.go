package dataset_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/tokens"
)

// trained waits until a collection has nothing left to train.
func trained(ctx context.Context, s *dataset.Service, team, collID string) *dataset.CollectionDetail {
	for {
		c, err := s.Collection(ctx, team, collID)
		if err != nil || c.TrainingAmount == 0 {
			return c
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An EmbedderFunc plugs a function in as an embedding model, here the
// local embedder behind a counter of the texts it embeds.
func ExampleEmbedderFunc() {
	ctx := context.Background()
	texts := 0
	counting := dataset.EmbedderFunc(func(ctx context.Context, in []string) ([][]float32, error) {
		texts += len(in)
		return dataset.LocalEmbedder{}.Embed(ctx, in)
	})
	s, _ := dataset.New(ctx, dataset.Options{Embedders: map[string]dataset.Embedder{"counted": counting},
		DefaultVectorModel: "counted", Workers: 1})
	defer s.Close(ctx)
	ds, _ := s.CreateDataset(ctx, "team", "kb", "")
	c, _ := s.CreateCollection(ctx, "team", ds.ID, "faq")
	_, _ = s.Push(ctx, dataset.PushRequest{TeamID: "team", CollectionID: c.ID,
		Data: []dataset.PushItem{{Q: "refund window?", A: "30 days", Indexes: []dataset.Index{"money back"}}}})
	trained(ctx, s, "team", c.ID)
	fmt.Println("texts embedded:", texts) // q and its index
	// Output: texts embedded: 2
}

// A GeneratorFunc plugs a function in as the QA model: it gets FastGPT's
// prompt and answers with Q/A pairs.
func ExampleGeneratorFunc() {
	ctx := context.Background()
	qa := dataset.GeneratorFunc(func(ctx context.Context, prompt string) (dataset.GenerateResult, error) {
		return dataset.GenerateResult{Model: "canned", Text: "Q1: Who directed Suzume?\nA1: Makoto Shinkai."}, nil
	})
	s, _ := dataset.New(ctx, dataset.Options{QA: qa})
	defer s.Close(ctx)
	ds, _ := s.CreateDataset(ctx, "team", "films", "")
	c, _ := s.CreateCollection(ctx, "team", ds.ID, "notes")
	_, _ = s.Push(ctx, dataset.PushRequest{TeamID: "team", CollectionID: c.ID, Mode: dataset.ModeQA,
		Data: []dataset.PushItem{{Q: "Suzume is a 2022 film by Makoto Shinkai."}}})
	trained(ctx, s, "team", c.ID)
	list, _, _ := s.DataList(ctx, "team", c.ID, 0, 10)
	fmt.Println(list[0].Q, list[0].A)
	// Output: Who directed Suzume? Makoto Shinkai.
}

// A UsageRecorderFunc plugs a function in as the ledger: training usage
// reaches it from the store's outbox once the training is committed.
func ExampleUsageRecorderFunc() {
	ctx := context.Background()
	got := make(chan dataset.UsageRecord, 1)
	s, _ := dataset.New(ctx, dataset.Options{Usage: dataset.UsageRecorderFunc(func(_ context.Context, u dataset.UsageRecord) error {
		got <- u
		return nil
	})})
	defer s.Close(ctx)
	ds, _ := s.CreateDataset(ctx, "team", "kb", "")
	c, _ := s.CreateCollection(ctx, "team", ds.ID, "faq")
	_, _ = s.Push(ctx, dataset.PushRequest{TeamID: "team", CollectionID: c.ID, BillID: "bill-7",
		Data: []dataset.PushItem{{Q: "refund window?"}}})
	u := <-got
	fmt.Println(u.Module, u.BillID, u.Items)
	// Output: embedding bill-7 1
}

// A BillCheckerFunc plugs a function in to vet billIds: a push under a
// bill it does not know is refused before anything is queued.
func ExampleBillCheckerFunc() {
	ctx := context.Background()
	errNoBill := errors.New("no such bill")
	bills := dataset.BillCheckerFunc(func(_ context.Context, teamID, billID string) error {
		if billID != "bill-1" {
			return errNoBill
		}
		return nil
	})
	s, _ := dataset.New(ctx, dataset.Options{Bills: bills})
	defer s.Close(ctx)
	ds, _ := s.CreateDataset(ctx, "team", "kb", "")
	c, _ := s.CreateCollection(ctx, "team", ds.ID, "faq")
	for _, bill := range []string{"bill-1", "bill-2"} {
		_, err := s.Push(ctx, dataset.PushRequest{TeamID: "team", CollectionID: c.ID, BillID: bill,
			Data: []dataset.PushItem{{Q: "question under " + bill}}})
		fmt.Println(bill, err)
	}
	// Output:
	// bill-1 <nil>
	// bill-2 no such bill
}

// Options.Tokens takes any tokens.Counter, a tokens.CounterFunc here, to
// count for the limits of pushed items: a token a word.
func ExampleOptions_tokens() {
	ctx := context.Background()
	words := tokens.CounterFunc(func(text string) int { return len(strings.Fields(text)) })
	s, _ := dataset.New(ctx, dataset.Options{Tokens: words, IndexMaxTokens: 5})
	defer s.Close(ctx)
	ds, _ := s.CreateDataset(ctx, "team", "kb", "")
	c, _ := s.CreateCollection(ctx, "team", ds.ID, "faq")
	res, _ := s.Push(ctx, dataset.PushRequest{TeamID: "team", CollectionID: c.ID, Data: []dataset.PushItem{
		{Q: "short one"}, {Q: "a question of far more words than five, as counted"}}})
	fmt.Println("queued:", res.InsertLen, "over the limit:", res.OverToken[0].Error)
	// Output: queued: 1 over the limit: 10 tokens, more than 5
}
