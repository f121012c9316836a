package server_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/cl100k"
	"github.com/chatgate/chatgate/dataset"
)

// A keyless chat through a share link with a 128 KiB one-word message is
// answered, and billed by its real token count: the count that took 10 s
// of CPU now takes milliseconds, and is the library's own.
func TestLongWordShareChat(t *testing.T) {
	e := liStart(t)
	var tokens cl100k.Counter
	ask := func(content string) (answer string, usage chat.Usage) {
		t.Helper()
		status, body := liRoutes[0].send(t, e, content, 0)
		var res struct {
			Choices []struct {
				Message struct{ Content string } `json:"message"`
			} `json:"choices"`
			Usage chat.Usage `json:"usage"`
		}
		if status != 200 || json.Unmarshal(body, &res) != nil || len(res.Choices) != 1 {
			t.Fatalf("share-link chat with %d bytes: %d %.300s", len(content), status, body)
		}
		return res.Choices[0].Message.Content, res.Usage
	}
	word := liWord(128 << 10)
	answer, long := ask(word)
	_, short := ask("hello")
	if answer != chat.DefaultEmptyAnswer {
		t.Fatalf("answer %q, want the app's empty answer", answer)
	}
	if got, want := long.PromptTokens-short.PromptTokens, tokens.Count(word)-tokens.Count("hello"); got != want || want < len(word)/4 {
		t.Fatalf("the long word's prompt holds %d tokens more than hello's, want %d", got, want)
	}
	if long.CompletionTokens != tokens.Count(answer) || long.TotalTokens != long.PromptTokens+long.CompletionTokens {
		t.Fatalf("usage %+v", long)
	}
}

// collection/create/text with a 1 MiB one-word text is answered: the word
// is cut into chunks (at most 2000, the push limit) that each fit the
// chunk size, and every one is queued.
func TestLongWordTextCollection(t *testing.T) {
	e := liStart(t)
	word := liWord(1 << 20)
	status, body := liRoutes[len(liRoutes)-1].send(t, e, word, 1)
	var env struct {
		Code int `json:"code"`
		Data struct {
			CollectionID string             `json:"collectionId"`
			Results      dataset.PushResult `json:"results"`
		} `json:"data"`
	}
	if status != 200 || json.Unmarshal(body, &env) != nil || env.Code != 200 || env.Data.CollectionID == "" {
		t.Fatalf("create/text with a 1 MiB word: %d %.300s", status, body)
	}
	var tokens cl100k.Counter
	res := env.Data.Results
	if fewest := (tokens.Count(word) + 511) / 512; res.InsertLen < fewest || res.InsertLen > dataset.MaxPushItems {
		t.Fatalf("%d chunks queued; a word of %d tokens makes %d to %d chunks of up to 512", res.InsertLen,
			tokens.Count(word), fewest, dataset.MaxPushItems)
	}
	if len(res.OverToken)+len(res.Repeat)+len(res.Error)+len(res.FileIDInvalid) != 0 {
		t.Fatalf("chunks refused: %+v", res)
	}
	e.drain(t, env.Data.CollectionID)
	var detail struct {
		DataAmount   int `json:"dataAmount"`
		FailedAmount int `json:"failedAmount"`
	}
	liData(t, "GET", e.base+"/api/core/dataset/collection/detail?id="+env.Data.CollectionID, e.key, nil, &detail)
	if detail.DataAmount != res.InsertLen || detail.FailedAmount != 0 {
		t.Fatalf("%d chunks queued, trained into %+v", res.InsertLen, detail)
	}
	var page struct {
		List []struct {
			Q string `json:"q"`
		} `json:"list"`
	}
	liData(t, "GET", e.base+"/api/core/dataset/data/list?pageSize=30&collectionId="+env.Data.CollectionID, e.key, nil, &page)
	if len(page.List) == 0 {
		t.Fatal("no data listed")
	}
	for _, d := range page.List {
		if n := tokens.Count(d.Q); n > 512 || !strings.Contains(word, d.Q) {
			t.Fatalf("chunk of %d bytes, %d tokens, part of the word: %v", len(d.Q), n, strings.Contains(word, d.Q))
		}
	}
}
