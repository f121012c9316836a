package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/dataset"
)

// Default settings of the reference server.
const (
	DefaultAddr = "127.0.0.1:9527"
	DefaultData = "./data"
)

// Config is the reference server's configuration: the YAML file, then the
// CHATGATE_* environment, then flags, each overriding the one before.
type Config struct {
	Server   ServerConfig  `yaml:"server"`
	Channels Channels      `yaml:"channels"`
	Bindings []Binding     `yaml:"bindings"`
	Auth     AuthConfig    `yaml:"auth"`
	Logging  LoggingConfig `yaml:"logging"`
	Models   []ModelConfig `yaml:"models"`
	Apps     []AppConfig   `yaml:"apps"`
	Chat     ChatConfig    `yaml:"chat"`
	Dataset  DatasetConfig `yaml:"dataset"`
	Billing  BillingConfig `yaml:"billing"`
	Share    ShareConfig   `yaml:"share"`
	Storage  StorageConfig `yaml:"storage"`
	Redis    RedisConfig   `yaml:"redis"`

	// OpenAIBaseURL and OpenAIAPIKey, from the OPENAI_BASE_URL and
	// OPENAI_API_KEY variables the OpenAI SDKs use, register an
	// OpenAI-compatible provider that serves every model name not declared.
	OpenAIBaseURL string `yaml:"-"`
	OpenAIAPIKey  string `yaml:"-"`

	// RootKey, from CHATGATE_ROOT_KEY, is imported as the admin key. It is
	// never read from the file, so the file can be shared without it.
	RootKey string `yaml:"-"`
	// Stderr receives the one-time root key notice; os.Stderr when nil.
	Stderr io.Writer `yaml:"-"`

	file string // the file LoadConfig read, for errors that name a line
}

// ServerConfig holds the HTTP settings.
type ServerConfig struct {
	Addr string `yaml:"addr"`
	Data string `yaml:"data"`
	// ShutdownTimeout bounds how long shutdown waits for requests in flight.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// MaxBodyBytes limits every request body; 1 MiB when zero.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// BodyReadTimeout is how long a client has to send a request body once
	// its headers are in; 30s when zero. A stream answering the request is
	// not bound by it.
	BodyReadTimeout Duration `yaml:"body_read_timeout"`
}

// AuthConfig holds key settings.
type AuthConfig struct {
	// KeyPrefix starts generated keys; "cg-" when empty.
	KeyPrefix string `yaml:"key_prefix"`
	// TrustedProxies are CIDRs whose X-Forwarded-For header is believed.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// FlushInterval is how often key usage is written back; 5s when zero.
	FlushInterval Duration `yaml:"flush_interval"`
	// FailureLimitPerMinute is how many requests with an invalid key one
	// client address may make in a minute before the next ones are answered
	// 429 too_many_auth_failures (a valid key is never refused); 60 when
	// zero, negative turns the throttle off. Counted per process.
	FailureLimitPerMinute int `yaml:"failure_limit_per_minute"`
	// AuditRetention is how long audit events are kept, e.g. 2160h; 90 days
	// when zero, negative keeps them forever.
	AuditRetention Duration `yaml:"audit_retention"`
	// AuditMaxEvents caps the audit trail at its newest events; 1,000,000
	// when zero, negative: no cap.
	AuditMaxEvents int `yaml:"audit_max_events"`
}

// LoggingConfig selects the log format and level.
type LoggingConfig struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // text (default) or json
}

// Channels holds the agent API channel's accounts.
type Channels struct {
	API APIChannel `yaml:"api"`
}

// APIChannel is the "api" channel: accounts whose api_key becomes a
// config-managed chatgate key.
type APIChannel struct {
	Enabled  bool               `yaml:"enabled"`
	Accounts map[string]Account `yaml:"accounts"`
}

// Account is one API-channel account.
type Account struct {
	Name    string `yaml:"name"`
	Enabled bool   `yaml:"enabled"`
	APIKey  string `yaml:"api_key"`
	// DMPolicy "disabled" takes the chat scope away; "allow" (default) keeps it.
	DMPolicy string `yaml:"dm_policy"`
	// GroupPolicy is kept for compatibility with the API channel's files;
	// chatgate has no group chats, so it is recorded but has no effect.
	GroupPolicy string `yaml:"group_policy"`
	// Scopes, a chatgate extension, replaces the default ["chat"].
	Scopes []string `yaml:"scopes"`
	// Team, a chatgate extension; "default" when empty.
	Team string `yaml:"team"`

	line       int  // in the file; 0 when built in code
	enabledSet bool // the file says enabled, true or false
}

// Binding maps accounts to an agent (a chatgate app).
type Binding struct {
	AgentID string       `yaml:"agent_id"`
	Match   BindingMatch `yaml:"match"`

	line int // in the file; 0 when built in code
}

// BindingMatch selects the accounts a binding applies to.
type BindingMatch struct {
	Default   bool   `yaml:"default"`
	Channel   string `yaml:"channel"`
	AccountID string `yaml:"account_id"`
}

// Duration is a time.Duration written as "30s" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration such as 30s", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// LoadConfig reads the YAML file at path (none when path is empty) over the
// defaults. Unknown fields are errors, so a typo does not pass silently, and
// so is an API-channel account without enabled.
func LoadConfig(path string) (Config, error) {
	var cfg Config
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
		cfg.file = path
		if err := cfg.checkAccounts(); err != nil {
			return cfg, err
		}
	}
	cfg.setDefaults()
	return cfg, nil
}

// ApplyEnv overrides cfg from CHATGATE_ADDR, CHATGATE_DATA, CHATGATE_ROOT_KEY,
// CHATGATE_POSTGRES_DSN and the variables the config names.
func (cfg *Config) ApplyEnv(lookup func(string) (string, bool)) {
	if v, ok := lookup("CHATGATE_ADDR"); ok && v != "" {
		cfg.Server.Addr = v
	}
	if v, ok := lookup("CHATGATE_DATA"); ok && v != "" {
		cfg.Server.Data = v
	}
	if v, ok := lookup("CHATGATE_ROOT_KEY"); ok && v != "" {
		cfg.RootKey = v
	}
	if v, ok := lookup("OPENAI_BASE_URL"); ok && v != "" {
		cfg.OpenAIBaseURL = v
	}
	if v, ok := lookup("OPENAI_API_KEY"); ok && v != "" {
		cfg.OpenAIAPIKey = v
	}
	if v, ok := lookup("CHATGATE_POSTGRES_DSN"); ok && v != "" {
		cfg.Storage.DSN = v
	}
	if v, ok := lookup("CHATGATE_REDIS_ADDR"); ok && v != "" {
		cfg.Redis.Addr = v
	}
	if n := cfg.Redis.PasswordEnv; n != "" {
		if v, ok := lookup(n); ok {
			cfg.Redis.Password = v
		}
	}
	if v, ok := lookup("CHATGATE_QA_MODEL"); ok && v != "" {
		cfg.Dataset.QAModel = v
	}
	for i := range cfg.Models {
		if m := &cfg.Models[i]; m.APIKey == "" && m.APIKeyEnv != "" {
			m.APIKey, _ = lookup(m.APIKeyEnv)
		}
	}
	for i := range cfg.Dataset.Embedders {
		if e := &cfg.Dataset.Embedders[i]; e.APIKey == "" && e.APIKeyEnv != "" {
			e.APIKey, _ = lookup(e.APIKeyEnv)
		}
	}
	if r := &cfg.Dataset.Rerank; r.APIKey == "" && r.APIKeyEnv != "" {
		r.APIKey, _ = lookup(r.APIKeyEnv)
	}
}

// DatasetConfig tunes knowledge bases.
type DatasetConfig struct {
	// QAModel names the model (one of models:, or any name the
	// OPENAI_BASE_URL provider serves) that writes Q/A pairs in QA-mode
	// training; CHATGATE_QA_MODEL overrides it. FastGPT spells it qaModel,
	// which is accepted too. Without one, QA mode answers 400
	// qa_model_unavailable unless OPENAI_BASE_URL is set.
	QAModel      string `yaml:"qa_model"`
	QAModelCamel string `yaml:"qaModel"`
	// ExtensionModel names the chat model searchTest's query extension
	// uses when a request names none (datasetSearchExtensionModel empty).
	ExtensionModel string `yaml:"extension_model"`
	// Workers is the number of training workers; 2 when zero.
	Workers int `yaml:"workers"`
	// FullText picks the full-text index: FullTextBuiltin (the default),
	// dataset's own in memory, filled from the database at each start; or
	// FullTextBleve, bleve's on disk in <data>/fulltext.bleve (the default
	// before issue 15), which starts without reading the data but searches
	// 100k chunks some 30 times slower. Only the built-in one serves
	// Postgres replicas.
	FullText string `yaml:"full_text"`
	// VectorModel is the embedder new datasets use: "local" (the default,
	// offline) or the name of one of Embedders.
	VectorModel string `yaml:"vector_model"`
	// Embedders declares remote embedding models datasets can name.
	Embedders []EmbedderConfig `yaml:"embedders"`
	// Rerank declares the rerank model searchTest's usingReRank uses; none
	// when its base_url is empty, and usingReRank answers 400
	// rerank_model_unavailable.
	Rerank RerankConfig `yaml:"rerank"`
	// MaxBodyBytes limits knowledge-base request bodies; 16 MiB when zero.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxFileBytes limits a file uploaded to collection/create/localFile,
	// counted as it arrives; 20 MiB when zero.
	MaxFileBytes int64 `yaml:"max_file_bytes"`
	// UploadReadTimeout is how long a client has to send a localFile
	// upload, in place of server.body_read_timeout (too short for 20 MiB
	// on a slow link); 5m when zero.
	UploadReadTimeout Duration `yaml:"upload_read_timeout"`
	// PDFTimeout bounds the reading of one uploaded PDF's text; 60s when
	// zero.
	PDFTimeout Duration `yaml:"pdf_timeout"`
	// MaxAttempts is how often a training item is tried before it fails
	// for good; 5 when zero.
	MaxAttempts int `yaml:"max_attempts"`
	// RetryBase is the first retry delay of a failed training item,
	// doubled at each attempt; 1s when zero.
	RetryBase Duration `yaml:"retry_base"`
	// Link tunes the page fetches of collection/create/link.
	Link LinkConfig `yaml:"link"`

	// ExtraEmbedders adds embedders written in Go, by the name datasets'
	// vectorModel gives, for programs that build the server in code.
	ExtraEmbedders map[string]dataset.Embedder `yaml:"-"`
	// QAGenerator, when set, writes QA-mode pairs instead of a model of
	// the registry; for programs that build the server in code.
	QAGenerator dataset.Generator `yaml:"-"`
	// Files, when set, reads the files collection/create/localFile
	// imports instead of the default (dataset/extract, with PDFs through
	// dataset/extract/pdftext); for programs that build the server in
	// code, or share one PDF engine between servers.
	Files dataset.FileExtractor `yaml:"-"`
}

// LinkConfig tunes the web-page fetches of collection/create/link. Pages
// are read through the guard share links' hooks use: loopback, private,
// link-local and reserved addresses are refused (400, naming link) unless
// AllowHosts lists them.
type LinkConfig struct {
	// AllowHosts opens internal hosts: CIDRs or addresses ("10.1.0.0/16")
	// permit those addresses, host names ("wiki.internal") that name
	// whatever it resolves to.
	AllowHosts []string `yaml:"allow_hosts"`
	// MaxBytes bounds a page's body; 5 MiB when zero. A larger page is
	// refused with a 400.
	MaxBytes int64 `yaml:"max_bytes"`
	// Timeout bounds a whole fetch; 15s when zero. A slower page is a 502.
	Timeout Duration `yaml:"timeout"`
	// MaxRedirects is how many redirects are followed; 5 when zero, none
	// when negative.
	MaxRedirects int `yaml:"max_redirects"`
}

// EmbedderConfig declares a remote embedding model.
type EmbedderConfig struct {
	Name      string `yaml:"name"`     // what datasets' vectorModel names
	Provider  string `yaml:"provider"` // openai (any OpenAI-compatible server) or ollama
	BaseURL   string `yaml:"base_url"`
	APIKey    string `yaml:"api_key"`
	APIKeyEnv string `yaml:"api_key_env"`
	Model     string `yaml:"model"` // the upstream model; the name when empty
}

// RerankConfig declares a rerank model: any Jina/Cohere-compatible
// endpoint, POST {base_url}/rerank.
type RerankConfig struct {
	// Name is what usage records and billing.prices call the model; the
	// model when empty.
	Name    string `yaml:"name"`
	BaseURL string `yaml:"base_url"` // e.g. https://api.jina.ai/v1
	// APIKey is sent as a bearer token; prefer APIKeyEnv, which names an
	// environment variable holding it. Neither: no Authorization header.
	APIKey    string `yaml:"api_key"`
	APIKeyEnv string `yaml:"api_key_env"`
	Model     string `yaml:"model"` // the upstream model, e.g. jina-reranker-v2-base-multilingual
}

// ModelConfig declares a model that apps can name.
type ModelConfig struct {
	Name     string `yaml:"name"`     // the name apps use
	Provider string `yaml:"provider"` // openai (any OpenAI-compatible server) or ollama
	BaseURL  string `yaml:"base_url"`
	// APIKey is the provider credential; prefer APIKeyEnv, which names an
	// environment variable holding it, to keep secrets out of the file.
	APIKey    string `yaml:"api_key"`
	APIKeyEnv string `yaml:"api_key_env"`
	// Model is the upstream model name; the declared name when empty.
	Model       string   `yaml:"model"`
	IdleTimeout Duration `yaml:"idle_timeout"`
}

// AppConfig declares an app. Apps declared here are read-only through the API.
type AppConfig struct {
	ID           string   `yaml:"id"`
	Name         string   `yaml:"name"`
	Team         string   `yaml:"team"`
	SystemPrompt string   `yaml:"system_prompt"`
	Model        string   `yaml:"model"`
	MaxTokens    int      `yaml:"max_tokens"`
	Temperature  *float64 `yaml:"temperature"`
	DatasetIDs   []string `yaml:"dataset_ids"`
	EmptyAnswer  string   `yaml:"empty_answer"`
	// MaxUsagePoints is the app's budget; 0: none.
	MaxUsagePoints float64 `yaml:"max_usage_points"`
	QuoteTemplate  string  `yaml:"quote_template"`
	Search         struct {
		Limit      int     `yaml:"limit"`
		Similarity float64 `yaml:"similarity"`
		Mode       string  `yaml:"mode"`
	} `yaml:"search"`
}

// ChatConfig tunes the chat routes.
type ChatConfig struct {
	// ResponsesEvent names the SSE event of module responses with detail=true:
	// flowResponses (default) or appStreamResponse, for clients written
	// against FastGPT's older documents.
	ResponsesEvent string `yaml:"responses_event"`
	// Heartbeat is the silence after which a stream gets a keep-alive comment; 15s when zero.
	Heartbeat Duration `yaml:"heartbeat"`
	// HistoryLimit is how many stored messages a turn sees; 30 when zero.
	HistoryLimit int `yaml:"history_limit"`
	// MaxBodyBytes limits a chat request; 4 MiB when zero.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

func (cfg *Config) setDefaults() {
	if cfg.Storage.Driver == "" && cfg.Storage.DSN != "" {
		cfg.Storage.Driver = "postgres"
	}
	if cfg.Server.Addr == "" {
		cfg.Server.Addr = DefaultAddr
	}
	if cfg.Server.Data == "" {
		cfg.Server.Data = DefaultData
	}
	if cfg.Server.ShutdownTimeout <= 0 {
		cfg.Server.ShutdownTimeout = Duration(30 * time.Second)
	}
	if cfg.Server.MaxBodyBytes <= 0 {
		cfg.Server.MaxBodyBytes = 1 << 20
	}
	if cfg.Server.BodyReadTimeout <= 0 {
		cfg.Server.BodyReadTimeout = Duration(DefaultBodyReadTimeout)
	}
	if cfg.Dataset.MaxFileBytes <= 0 {
		cfg.Dataset.MaxFileBytes = dataset.DefaultMaxFileBytes
	}
	if cfg.Dataset.UploadReadTimeout <= 0 {
		cfg.Dataset.UploadReadTimeout = Duration(DefaultUploadReadTimeout)
	}
}

func (cfg *Config) authOptions() (auth.Options, error) {
	proxies, err := auth.ParsePrefixes("auth.trusted_proxies", cfg.Auth.TrustedProxies)
	if err != nil {
		return auth.Options{}, fmt.Errorf("config: %w", err)
	}
	return auth.Options{
		Prefix:                cfg.Auth.KeyPrefix,
		TrustedProxies:        proxies,
		FlushInterval:         time.Duration(cfg.Auth.FlushInterval),
		FailureLimitPerMinute: cfg.Auth.FailureLimitPerMinute,
		AuditRetention:        time.Duration(cfg.Auth.AuditRetention),
		AuditMaxEvents:        cfg.Auth.AuditMaxEvents,
	}, nil
}

// ConfigKeys turns the API channel's accounts into config keys, binding each
// account to the app of its binding (an account-specific binding wins over
// a default one). An unbound account may address any app by name.
func (cfg *Config) ConfigKeys() ([]auth.ConfigKey, error) {
	if !cfg.Channels.API.Enabled {
		return nil, nil
	}
	names := make([]string, 0, len(cfg.Channels.API.Accounts))
	for n := range cfg.Channels.API.Accounts {
		names = append(names, n)
	}
	slices.Sort(names)
	keys := make([]auth.ConfigKey, 0, len(names))
	for _, n := range names {
		acc := cfg.Channels.API.Accounts[n]
		field := "channels.api.accounts." + n
		if strings.TrimSpace(acc.APIKey) == "" {
			return nil, fmt.Errorf("config: %s.api_key is required", field)
		}
		scopes := auth.Scopes{auth.ScopeChat}
		if len(acc.Scopes) > 0 {
			scopes = scopes[:0]
			for _, s := range acc.Scopes {
				scopes = append(scopes, auth.Scope(s))
			}
		}
		switch acc.DMPolicy {
		case "", "allow":
		case "disabled", "deny":
			scopes = slices.DeleteFunc(scopes, func(s auth.Scope) bool { return s == auth.ScopeChat })
		default:
			return nil, fmt.Errorf("config: %s.dm_policy must be allow or disabled, not %q", field, acc.DMPolicy)
		}
		if len(scopes) == 0 {
			return nil, fmt.Errorf("config: %s has no scopes left (dm_policy disabled removes chat); list its scopes", field)
		}
		keys = append(keys, auth.ConfigKey{
			Account: n, Name: acc.Name, Enabled: acc.Enabled, Secret: acc.APIKey, TeamID: acc.Team,
			AppID: cfg.bindingFor(n), Scopes: scopes,
			Meta: map[string]string{"dm_policy": acc.DMPolicy, "group_policy": acc.GroupPolicy},
		})
	}
	return keys, nil
}

func (cfg *Config) bindingFor(account string) string {
	if i := cfg.bindingIndex(account); i >= 0 {
		return cfg.Bindings[i].AgentID
	}
	return ""
}

// bindingIndex returns the index of the binding that applies to account,
// or -1.
func (cfg *Config) bindingIndex(account string) int {
	def := -1
	for i, b := range cfg.Bindings {
		if b.Match.Channel != "" && b.Match.Channel != "api" {
			continue
		}
		if b.Match.AccountID == account {
			return i
		}
		if b.Match.Default && b.Match.AccountID == "" && def < 0 {
			def = i
		}
	}
	return def
}
