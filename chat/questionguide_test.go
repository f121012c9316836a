package chat_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
)

// The guide reads the questions however the model wrapped them; a model
// that fails, or a model the server lacks, costs nothing.
func TestQuestionGuideAnswers(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		answer string
		want   []string
	}{
		{`["a?", "b?", "c?"]`, []string{"a?", "b?", "c?"}},
		{"Here you are:\n```json\n[\"a?\",\n \"b?\"]\n```", []string{"a?", "b?"}},
		{"1. a?\n2) b?\n- c?\n", []string{"a?", "b?", "c?"}},
		{`["1", "2", "3", "4", "5", "6", ""]`, []string{"1", "2", "3", "4", "5"}},
		{`["` + strings.Repeat("长", chat.MaxGuideQuestionRunes+1) + `", "ok?"]`, []string{"ok?"}},
		{"", []string{}},
	} {
		usage := &usageLog{}
		m := chat.ModelFunc(func(_ context.Context, req chat.ModelRequest, _ func(string) error) (chat.ModelResult, error) {
			return chat.ModelResult{Text: c.answer, Usage: chat.Usage{PromptTokens: 9, CompletionTokens: 3}}, nil
		})
		e := newTestEngine(t, m, chat.EngineOptions{Usage: usage})
		got, err := e.QuestionGuide(ctx, chat.GuideRequest{TeamID: auth.DefaultTeam, KeyID: "k1", AppID: "app",
			Messages: []chat.Message{{Role: chat.RoleUser, Content: "hi"}}})
		if err != nil || !slices.Equal(got, c.want) {
			t.Fatalf("answer %q: %q, %v; want %q", c.answer, got, err, c.want)
		}
		if len(usage.recs) != 1 || usage.recs[0].Module != chat.ModuleQuestionGuide || usage.recs[0].InputTokens != 9 ||
			usage.recs[0].OutputTokens != 3 || usage.recs[0].KeyID != "k1" {
			t.Fatalf("usage %+v", usage.recs)
		}
	}

	usage := &usageLog{}
	e := newTestEngine(t, &echoModel{fail: errors.New("upstream 503")}, chat.EngineOptions{Usage: usage})
	if _, err := e.QuestionGuide(ctx, chat.GuideRequest{TeamID: auth.DefaultTeam, AppID: "app",
		Messages: []chat.Message{{Role: chat.RoleUser, Content: "hi"}}}); err == nil || !strings.Contains(err.Error(), "upstream 503") {
		t.Fatalf("a failing model: %v", err)
	}
	_, err := e.QuestionGuide(ctx, chat.GuideRequest{TeamID: auth.DefaultTeam, AppID: "app", Model: "nope",
		Messages: []chat.Message{{Role: chat.RoleUser, Content: "hi"}}})
	var ae *apierror.Error
	if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Message, "questionGuide.model") {
		t.Fatalf("an unknown model: %v", err)
	}
	if len(usage.recs) != 0 {
		t.Fatalf("refused guides were billed: %+v", usage.recs)
	}
}

// The offline model quotes a knowledge base; it cannot write questions.
func TestQuestionGuideOfflineModel(t *testing.T) {
	store := chat.NewMemoryStore()
	models := new(chat.Models)
	models.Register(chat.ExtractiveModelName, chat.Extractive{})
	e := chat.NewEngine(chat.EngineOptions{Apps: store, History: store, Models: models})
	ctx := context.Background()
	if err := e.SaveApp(ctx, &chat.App{ID: "app", Name: "app", Model: chat.ExtractiveModelName}); err != nil {
		t.Fatal(err)
	}
	_, err := e.QuestionGuide(ctx, chat.GuideRequest{TeamID: auth.DefaultTeam, AppID: "app",
		Messages: []chat.Message{{Role: chat.RoleUser, Content: "hi"}}})
	if !errors.Is(err, chat.ErrQuestionGuideUnavailable) {
		t.Fatalf("offline model: %v", err)
	}
}
