package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/dataset"
)

// queryExtender picks the chat models searchTest's query extension
// (datasetSearchUsingExtensionQuery) may use: any the registry serves but
// the offline extractive one, which cannot write text. With no language
// model at all (no models: and no OPENAI_BASE_URL) it is nil, and the
// search answers that query extension is unavailable.
func (cfg *Config) queryExtender(models *chat.Models) dataset.QueryExtender {
	if len(cfg.Models) == 0 && cfg.OpenAIBaseURL == "" {
		return nil
	}
	return &extensionModels{models: models, def: cfg.Dataset.ExtensionModel}
}

// extensionModels adapts the chat model registry to dataset.QueryExtender.
type extensionModels struct {
	models chat.ModelLookup
	def    string // dataset.extension_model: the model when a search names none
}

// extensionTemperature is low, as FastGPT's is (0.01): the rewrites
// should be the likeliest ones, the same for the same question.
const extensionTemperature = 0.01

func (x *extensionModels) Complete(ctx context.Context, model, prompt string) (dataset.GenerateResult, error) {
	name := cmp.Or(model, x.def)
	switch name {
	case "":
		return dataset.GenerateResult{}, fmt.Errorf("%w: name one (no dataset.extension_model is configured)", dataset.ErrExtensionModel)
	case chat.ExtractiveModelName:
		return dataset.GenerateResult{}, fmt.Errorf("%w: %q is the offline extractive model, which cannot rewrite questions; name a language model",
			dataset.ErrExtensionModel, name)
	}
	m, err := x.models.Lookup(name)
	if errors.Is(err, chat.ErrUnknownModel) {
		return dataset.GenerateResult{}, fmt.Errorf("%w: %q is not a chat model chatgate serves", dataset.ErrExtensionModel, name)
	}
	if err != nil {
		return dataset.GenerateResult{}, err
	}
	temp := extensionTemperature
	// A no-op onToken rather than nil, as qaModel passes, for models
	// written before nil was allowed.
	res, err := m.Generate(ctx, chat.ModelRequest{Model: name, Question: prompt, Temperature: &temp,
		Messages: []chat.Message{{Role: chat.RoleUser, Content: prompt}}}, func(string) error { return nil })
	if err != nil {
		return dataset.GenerateResult{}, err
	}
	return dataset.GenerateResult{Text: res.Text, Model: name, PromptTokens: res.Usage.PromptTokens,
		CompletionTokens: res.Usage.CompletionTokens}, nil
}
