package dataset_test

import (
	"context"
	"fmt"
	"time"

	"github.com/chatgate/chatgate/dataset"
)

// A knowledge base in memory: push question/answer pairs, let the training
// queue embed them with the local embedder, and search.
func Example() {
	ctx := context.Background()
	// Options{} is all in memory; a server passes a BoltStore and an
	// on-disk full-text index, and its embedders and QA model.
	s, err := dataset.New(ctx, dataset.Options{})
	if err != nil {
		panic(err)
	}
	defer s.Close(ctx)

	ds, err := s.CreateDataset(ctx, "team-1", "films", "") // "" is the default vector model
	if err != nil {
		panic(err)
	}
	coll, err := s.CreateCollection(ctx, "team-1", ds.ID, "manual entries")
	if err != nil {
		panic(err)
	}
	res, err := s.Push(ctx, dataset.PushRequest{TeamID: "team-1", CollectionID: coll.ID, Data: []dataset.PushItem{
		{Q: "电影《铃芽之旅》的导演是谁？", A: "电影《铃芽之旅》的导演是新海诚。"},
		{Q: "Who wrote the novel Moby-Dick?", A: "Herman Melville wrote Moby-Dick."},
		{Q: "Who wrote the novel Moby-Dick?", A: "a repeat: not queued again"},
	}})
	if err != nil {
		panic(err)
	}
	fmt.Println("queued:", res.InsertLen, "repeats:", len(res.Repeat))

	// Training is asynchronous; the collection says how much is left.
	for {
		c, err := s.Collection(ctx, "team-1", coll.ID)
		if err != nil {
			panic(err)
		}
		if c.TrainingAmount == 0 {
			fmt.Println("trained:", c.DataAmount, "failed:", c.FailedAmount)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	for _, q := range []string{"导演是谁", "who is the author of Moby-Dick"} {
		found, err := s.Search(ctx, dataset.SearchRequest{TeamID: "team-1", DatasetIDs: []string{ds.ID},
			Text: q, MaxResults: 1, Mode: dataset.SearchEmbedding})
		if err != nil {
			panic(err)
		}
		fmt.Println(q, "->", found.Hits[0].A)
	}
	// Output:
	// queued: 2 repeats: 1
	// trained: 2 failed: 0
	// 导演是谁 -> 电影《铃芽之旅》的导演是新海诚。
	// who is the author of Moby-Dick -> Herman Melville wrote Moby-Dick.
}
