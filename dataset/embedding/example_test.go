package embedding_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/embedding"
)

// A Client for an OpenAI-compatible endpoint (here a stand-in that
// answers every text with the same vector) embeds a dataset's data once
// it is one of a Service's Embedders.
func Example() {
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Input []string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		type item struct {
			Index     int       `json:"index"`
			Embedding []float32 `json:"embedding"`
		}
		out := struct {
			Data []item `json:"data"`
		}{}
		for i := range req.Input {
			out.Data = append(out.Data, item{Index: i, Embedding: []float32{0.6, 0.8}})
		}
		_ = json.NewEncoder(w).Encode(out)
	}))
	defer endpoint.Close()

	emb, err := embedding.NewOpenAI(embedding.Config{BaseURL: endpoint.URL + "/v1", APIKey: "sk-...", Model: "text-embedding-3-small"})
	if err != nil {
		panic(err)
	}
	vs, err := emb.Embed(context.Background(), []string{"退货期限是多久？", "Who pays for shipping?"})
	fmt.Println(len(vs), vs[1], err)
	_ = dataset.Options{Embedders: map[string]dataset.Embedder{"text-embedding-3-small": emb}}
	// Output: 2 [0.6 0.8] <nil>
}
