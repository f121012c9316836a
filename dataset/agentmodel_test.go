package dataset_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/dataset"
)

// FastGPT's dataset/create as its docs write it names an agentModel: the
// dataset's QA training asks that model, not the default one; a name the
// service does not have, or an image model, is refused by name and creates
// nothing.
func TestDatasetAgentModel(t *testing.T) {
	answer := func(model string) *fakeGen {
		return &fakeGen{answer: func(int, string) (dataset.GenerateResult, error) {
			return dataset.GenerateResult{Text: "Q1: 保修多久？\nA1: 两年。", Model: model, PromptTokens: 10, CompletionTokens: 5}, nil
		}}
	}
	def, agent := answer("default-qa"), answer("gpt-3.5-turbo-16k")
	e := newHTTPEnv(t, dataset.Options{QA: def, QAModels: dataset.QAModelMap{"gpt-3.5-turbo-16k": agent},
		Embedders: map[string]dataset.Embedder{dataset.LocalModel: dataset.LocalEmbedder{}, "text-embedding-ada-002": dataset.LocalEmbedder{}}})

	before := e.snapshot(t, e.writeA)
	for _, c := range []struct {
		body  string
		field string
	}{
		{`{"parentId": null, "type": "dataset", "name": "测试", "agentModel": "gpt-4-unknown"}`, "agentModel"},
		{`{"name": "测试", "vlmModel": "qwen-vl"}`, "vlmModel"},
	} {
		e.fails(t, e.writeA, "POST", "/api/core/dataset/create", c.body, 400, "invalid_request", c.field)
	}
	if got := e.snapshot(t, e.writeA); got != before {
		t.Fatalf("a refused create left something behind:\nbefore %s\nafter  %s", before, got)
	}

	// the documented request, as written
	var ds string
	e.ok(t, e.writeA, "POST", "/api/core/dataset/create", `{
    "parentId": null,
    "type": "dataset",
    "name":"测试",
    "intro":"介绍",
    "avatar": "",
    "vectorModel": "text-embedding-ada-002",
    "agentModel": "gpt-3.5-turbo-16k"
}`, &ds)
	var detail dataset.Dataset
	e.ok(t, e.writeA, "GET", "/api/core/dataset/detail?id="+ds, nil, &detail)
	if detail.AgentModel != "gpt-3.5-turbo-16k" || detail.VectorModel != "text-embedding-ada-002" || detail.Intro != "介绍" {
		t.Fatalf("detail = %+v", detail)
	}
	plain := e.createDataset(t, e.writeA, "plain")

	push := func(dsID string) {
		t.Helper()
		coll := e.createCollection(t, e.writeA, dsID, "c")
		var res pushResult
		e.ok(t, e.writeA, "POST", "/api/core/dataset/data/pushData", map[string]any{"collectionId": coll, "mode": "qa",
			"data": []map[string]any{{"q": "本产品保修两年，自购买之日起计算。"}}}, &res)
		if *res.InsertLen != 1 {
			t.Fatalf("push = %+v", res)
		}
		e.waitIdle(t, e.writeA, coll)
	}
	push(ds)
	push(plain)
	if len(agent.Prompts()) != 1 || len(def.Prompts()) != 1 {
		t.Fatalf("the agent model had %d prompts, the default %d; want one each", len(agent.Prompts()), len(def.Prompts()))
	}
	waitFor(t, "QA usage", func() bool { return len(e.usage.module(dataset.ModuleQA)) == 2 })
	models := map[string]string{}
	for _, u := range e.usage.module(dataset.ModuleQA) {
		models[u.DatasetID] = u.Model
	}
	if models[ds] != "gpt-3.5-turbo-16k" || models[plain] != "default-qa" {
		t.Fatalf("QA usage by dataset: %v", models)
	}

	// update: to an unknown model refused, changing nothing; back to the
	// default with ""
	e.fails(t, e.writeA, "PUT", "/api/core/dataset/update", map[string]any{"id": ds, "agentModel": "nope", "name": "renamed"},
		400, "invalid_request", "agentModel")
	e.ok(t, e.writeA, "GET", "/api/core/dataset/detail?id="+ds, nil, &detail)
	if detail.AgentModel != "gpt-3.5-turbo-16k" || detail.Name != "测试" {
		t.Fatalf("a refused update changed the dataset: %+v", detail)
	}
	e.ok(t, e.writeA, "PUT", "/api/core/dataset/update", map[string]any{"id": ds, "agentModel": ""}, nil)
	detail = dataset.Dataset{}
	e.ok(t, e.writeA, "GET", "/api/core/dataset/detail?id="+ds, nil, &detail)
	if detail.AgentModel != "" {
		t.Fatalf("agentModel after update to \"\": %q", detail.AgentModel)
	}
}

// A dataset whose agentModel the config no longer has refuses QA pushes by
// that name, rather than training with another model.
func TestDatasetAgentModelGone(t *testing.T) {
	ctx := context.Background()
	st := dataset.NewMemoryStore()
	gen := &fakeGen{answer: func(int, string) (dataset.GenerateResult, error) {
		return dataset.GenerateResult{Text: "Q1: a?\nA1: b.", Model: "qa-1"}, nil
	}}
	s := newService(t, dataset.Options{Store: st, QAModels: dataset.QAModelMap{"qa-1": gen}})
	ds, err := s.CreateDatasetWith(ctx, "team-a", dataset.DatasetSpec{Name: "kb", AgentModel: "qa-1"})
	if err != nil {
		t.Fatal(err)
	}
	coll, err := s.CreateCollection(ctx, "team-a", ds.ID, "c")
	if err != nil {
		t.Fatal(err)
	}
	// the same store under a service configured without qa-1
	other := newService(t, dataset.Options{Store: st, QAModels: dataset.QAModelMap{"qa-2": gen}})
	_, err = other.Push(ctx, dataset.PushRequest{TeamID: "team-a", CollectionID: coll.ID, Mode: dataset.ModeQA,
		Data: []dataset.PushItem{{Q: "text"}}})
	if !errors.Is(err, dataset.ErrQAModelUnavailable) || !strings.Contains(err.Error(), `"qa-1"`) {
		t.Fatalf("push to a dataset whose agentModel is gone = %v; want ErrQAModelUnavailable naming qa-1", err)
	}
	if len(gen.Prompts()) != 0 {
		t.Fatal("the model was asked")
	}
}
