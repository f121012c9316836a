package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/llm"
)

// models builds the model registry: the offline extractive model, the
// declared models, and the OPENAI_BASE_URL provider as the fallback.
func (cfg *Config) models() (*chat.Models, error) {
	reg := new(chat.Models)
	reg.Register(chat.ExtractiveModelName, chat.Extractive{})
	for i, mc := range cfg.Models {
		field := fmt.Sprintf("models[%d]", i)
		if mc.Name == "" {
			return nil, fmt.Errorf("config: %s.name is required", field)
		}
		if mc.Name == chat.ExtractiveModelName {
			return nil, fmt.Errorf("config: %s.name %q is the built-in offline model", field, mc.Name)
		}
		pc := llm.Config{BaseURL: mc.BaseURL, APIKey: mc.APIKey, Model: mc.Model, IdleTimeout: time.Duration(mc.IdleTimeout)}
		if pc.Model == "" {
			pc.Model = mc.Name
		}
		var (
			m   chat.Model
			err error
		)
		switch mc.Provider {
		case "openai", "":
			m, err = llm.NewOpenAI(pc)
		case "ollama":
			m, err = llm.NewOllama(pc)
		default:
			return nil, fmt.Errorf("config: %s.provider must be openai or ollama, not %q", field, mc.Provider)
		}
		if err != nil {
			return nil, fmt.Errorf("config: %s: %w", field, err)
		}
		reg.Register(mc.Name, m)
	}
	if cfg.OpenAIBaseURL != "" {
		m, err := llm.NewOpenAI(llm.Config{BaseURL: cfg.OpenAIBaseURL, APIKey: cfg.OpenAIAPIKey})
		if err != nil {
			return nil, fmt.Errorf("OPENAI_BASE_URL: %w", err)
		}
		reg.SetFallback(m)
	}
	return reg, nil
}

// syncApps saves the config's apps (read-only through the API) and makes
// sure the default app exists, so a fresh server can chat at once.
func (s *Server) syncApps(ctx context.Context, store chat.AppStore) error {
	now := time.Now().UTC()
	for i, ac := range s.cfg.Apps {
		a := &chat.App{ID: ac.ID, Name: ac.Name, TeamID: ac.Team, SystemPrompt: ac.SystemPrompt, Model: ac.Model,
			MaxTokens: ac.MaxTokens, Temperature: ac.Temperature, DatasetIDs: ac.DatasetIDs, EmptyAnswer: ac.EmptyAnswer,
			QuoteTemplate: ac.QuoteTemplate, MaxUsagePoints: ac.MaxUsagePoints, Source: "config", CreateTime: now, UpdateTime: now,
			Search: chat.SearchSettings{Limit: ac.Search.Limit, Similarity: ac.Search.Similarity, Mode: ac.Search.Mode}}
		if a.Name == "" {
			a.Name = a.ID
		}
		if old, err := store.App(ctx, cmp.Or(a.TeamID, auth.DefaultTeam), a.ID); err == nil {
			a.CreateTime = old.CreateTime
		}
		if err := s.Chat.SaveApp(ctx, a); err != nil {
			return fmt.Errorf("config: apps[%d] (%s): %w", i, ac.ID, err)
		}
	}
	if err := s.releaseConfigApps(ctx, store); err != nil {
		return err
	}
	_, err := store.App(ctx, auth.DefaultTeam, chat.DefaultAppID)
	if errors.Is(err, chat.ErrAppNotFound) {
		return s.Chat.SaveApp(ctx, &chat.App{ID: chat.DefaultAppID, Name: "Main", TeamID: auth.DefaultTeam,
			Model: chat.ExtractiveModelName, CreateTime: now, UpdateTime: now})
	}
	return err
}

// releaseConfigApps hands apps the config file no longer declares (removed,
// or moved to another team) over to the API: they keep their history and
// keys, and an admin may now change or delete them, which the API refuses
// for config apps.
func (s *Server) releaseConfigApps(ctx context.Context, store chat.AppStore) error {
	declared := map[[2]string]bool{}
	for _, ac := range s.cfg.Apps {
		declared[[2]string{cmp.Or(ac.Team, auth.DefaultTeam), ac.ID}] = true
	}
	apps, err := store.Apps(ctx, "")
	if err != nil {
		return err
	}
	for _, a := range apps {
		if a.Source != "config" || declared[[2]string{a.TeamID, a.ID}] {
			continue
		}
		a.Source, a.UpdateTime = "", time.Now().UTC()
		if err := store.PutApp(ctx, a); err != nil {
			return fmt.Errorf("config: releasing app %s of team %s: %w", a.ID, a.TeamID, err)
		}
		s.log.Warn("config: an app the config file no longer declares is now managed through the API", "app", a.ID, "team", a.TeamID)
	}
	return nil
}

// usageMetrics counts chat tokens for /metrics; it is the chat usage
// recorder until billing provides the ledger.
type usageMetrics struct {
	tokens *prometheus.CounterVec
}

func newUsageMetrics(reg *prometheus.Registry) *usageMetrics {
	u := &usageMetrics{tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatgate_chat_tokens_total",
		Help: "Tokens used by chat calls, by module, model and direction (input, output).",
	}, []string{"module", "model", "direction"})}
	reg.MustRegister(u.tokens)
	return u
}

// RecordChatUsage implements chat.UsageRecorder.
func (u *usageMetrics) RecordChatUsage(_ context.Context, r chat.UsageRecord) error {
	u.tokens.WithLabelValues(r.Module, r.Model, "input").Add(float64(r.InputTokens))
	u.tokens.WithLabelValues(r.Module, r.Model, "output").Add(float64(r.OutputTokens))
	return nil
}
