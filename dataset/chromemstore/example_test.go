package chromemstore_test

import (
	"context"
	"fmt"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/chromemstore"
)

// A Store holds each dataset's vectors in a chromem collection; a Service
// given it as Options.Vectors loads it from its Store at start.
func Example() {
	ctx := context.Background()
	vs := chromemstore.New()
	emb := dataset.LocalEmbedder{}
	texts := []string{"退货期限是多久？", "Who pays for shipping?"}
	vecs, _ := emb.Embed(ctx, texts)
	_ = vs.Upsert(ctx, "shop", []dataset.Vector{{ID: "refunds", Values: vecs[0]}, {ID: "shipping", Values: vecs[1]}})
	q, _ := emb.Embed(ctx, []string{"who pays the shipping"})
	hits, _ := vs.Query(ctx, "shop", q[0], 1)
	fmt.Println(hits[0].ID)
	// Output: shipping
}
