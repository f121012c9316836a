package fulltext_test

import (
	"context"
	"fmt"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/fulltext"
)

// An index in memory (a directory keeps it on disk), searched on its own;
// a Service given it as Options.Text keeps it caught up with its data.
func Example() {
	ctx := context.Background()
	idx, err := fulltext.Open("")
	if err != nil {
		panic(err)
	}
	defer idx.Close()
	_ = idx.Index(ctx, []dataset.TextDoc{
		{ID: "d1", DatasetID: "films", Text: "电影《铃芽之旅》的导演是谁？\n新海诚"},
		{ID: "d2", DatasetID: "films", Text: "Who wrote the novel Moby-Dick?\nHerman Melville"},
	})
	for _, q := range []string{"铃芽之旅的导演", "moby dick"} {
		hits, _ := idx.Search(ctx, []string{"films"}, q, 5)
		fmt.Println(q, "->", hits[0].ID)
	}
	// Output:
	// 铃芽之旅的导演 -> d1
	// moby dick -> d2
}
