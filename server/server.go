// Package server wires chatgate's domains into the reference server: one
// bbolt file for records, the HTTP routes with the scope each needs,
// Prometheus metrics, and a graceful shutdown that loses nothing.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/billing"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/cl100k"
	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/extract"
	"github.com/chatgate/chatgate/dataset/extract/pdftext"
	"github.com/chatgate/chatgate/dataset/fulltext"
	"github.com/chatgate/chatgate/shareauth"
)

// DBFile is the name of the bbolt file in the data directory.
const DBFile = "chatgate.db"

// JournalFile is the name of the usage ledger's journal in the data
// directory: usage records acknowledged and not yet in DBFile. It belongs
// with DBFile; copy or move the two together.
const JournalFile = "chatgate.usage-journal"

// Server is a configured chatgate server. Create it with New, serve it with
// Run or Serve, and Close it when done (Run closes it itself).
type Server struct {
	cfg     Config
	log     *slog.Logger
	be      *backend
	metrics *metrics
	handler http.Handler

	// Authn authenticates requests; Keys manages keys. They are exported so
	// that a program embedding the server can add routes of its own.
	Authn *auth.Authenticator
	Keys  *auth.Manager
	// Chat is the chat engine; its apps and history share the database.
	Chat *chat.Engine
	// Billing prices usage, keeps the ledger and charges keys.
	Billing *billing.Accountant
	// Datasets is the knowledge-base service; chat apps retrieve through it.
	Datasets *dataset.Service
	text     *fulltext.Index
	pages    dataset.PageFetcher // collection/create/link's
	// files reads uploaded files; pdf is the default's PDF engine,
	// compiled on the first PDF and released by Close.
	files dataset.FileExtractor
	pdf   *pdftext.Reader
	// Share manages share links and their auth-host callbacks.
	Share *shareauth.Service

	limits *limits // nil: limits are counted in process

	// stopFollowing ends following other replicas' changes to keys and
	// apps; following is done when that has stopped.
	stopFollowing func()
	following     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// New opens the data directory and builds the server. It fails fast, with
// boltx.ErrLocked in the chain, when another process holds the database.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	log := newLogger(cfg.Logging)
	be, err := openBackend(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, be: be, metrics: newMetrics()}
	if err := s.init(); err != nil {
		_ = s.Close(context.Background())
		return nil, err
	}
	return s, nil
}

func (s *Server) init() error {
	store := s.be.keys
	opts, err := s.cfg.authOptions()
	if err != nil {
		return err
	}
	if s.limits, err = s.openLimits(context.Background()); err != nil {
		return err
	}
	s.limits.keys(&opts, s.be.ledger)
	if s.be.shared && s.cfg.Auth.FlushInterval == 0 {
		// last-used times are written by every replica; a second keeps
		// the replicas' answers about them that close
		opts.FlushInterval = time.Second
	}
	opts.Logger = s.log
	opts.OnFailure = func(reason string) { s.metrics.authFailures.WithLabelValues(reason).Inc() }
	opts.OnPanic = s.metrics.onPanic
	s.Authn = auth.NewAuthenticator(store, opts)
	s.Keys = auth.NewManager(store, s.Authn)
	wctx, cancel := context.WithCancel(context.Background())
	s.stopFollowing = cancel
	if s.be.watchKeys != nil {
		s.following.Go(func() { s.follow(wctx, "keys", s.followKeys) })
	}
	if s.be.watchApps != nil {
		s.following.Go(func() { s.follow(wctx, "apps", s.be.watchApps) })
	}

	ctx := context.Background()
	cks, err := s.cfg.ConfigKeys()
	if err != nil {
		return err
	}
	if err := s.openBilling(ctx); err != nil {
		return err
	}
	models, err := s.cfg.models()
	if err != nil {
		return err
	}
	chatStore := s.be.chat
	tokens := new(cl100k.Counter)
	go func() { _ = tokens.Warm() }() // the encoder takes a moment to build; not on the first request
	if err := s.openDataset(ctx, models, tokens); err != nil {
		return err
	}
	if err := s.openShare(chatStore); err != nil {
		return err
	}
	s.Chat = chat.NewEngine(chat.EngineOptions{Apps: chatStore, History: chatStore, Models: models,
		Retriever: retriever{s.Datasets}, Usage: chatUsage{s.Billing, newUsageMetrics(s.metrics.reg), s.Share}, Tokens: tokens,
		Price: s.Billing, Budget: s.Billing,
		HistoryLimit: s.cfg.Chat.HistoryLimit, Logger: s.log})
	if err := s.syncApps(ctx, chatStore); err != nil {
		return err
	}
	// Keys come last: a config that fails any check above changes no key,
	// and the admin key is printed only by a start that got this far.
	if err := s.cfg.checkBindings(ctx, cks, chatStore); err != nil {
		return err
	}
	if err := s.Keys.SyncConfig(ctx, cks); err != nil {
		return fmt.Errorf("config keys: %w", err)
	}
	shown, err := s.Keys.EnsureRootKey(ctx, s.cfg.RootKey)
	if err != nil {
		return err
	}
	if shown != "" {
		out := s.cfg.Stderr
		if out == nil {
			out = os.Stderr
		}
		fmt.Fprintf(out, "\nchatgate: created the admin key. It is shown this once; store it now:\n\n    %s\n\n"+
			"Set CHATGATE_ROOT_KEY to choose your own, or create more keys with it.\n\n", shown)
	}
	s.files = s.cfg.Dataset.Files
	if s.files == nil {
		s.pdf = pdftext.New(pdftext.Options{Timeout: time.Duration(s.cfg.Dataset.PDFTimeout)})
		s.files = extract.New(extract.Options{PDF: s.pdf})
	}
	s.handler = s.routes()
	return nil
}

// Handler returns the server's routes, for mounting in another server or a test.
func (s *Server) Handler() http.Handler { return s.handler }

// Run listens on cfg's address, then builds the server and serves until ctx
// is done, then shuts down gracefully and closes it. Binding first means a
// busy port fails before anything is created: no database, no admin key
// printed that a later start would not accept.
func Run(ctx context.Context, cfg Config) error {
	cfg.setDefaults()
	ln, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		return err
	}
	s, err := New(cfg)
	if err != nil {
		_ = ln.Close()
		return err
	}
	return s.Serve(ctx, ln)
}

// Run listens on the configured address and serves until ctx is done, then
// shuts down gracefully and closes the server. New has already opened the
// data directory (and may have printed a new admin key) by then; the
// package-level Run binds first.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Server.Addr)
	if err != nil {
		_ = s.Close(context.Background())
		return err
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is done. Shutdown waits up to the
// configured timeout for requests in flight, then cuts what remains; it then
// flushes key usage and closes the database.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.log.Info("chatgate listening", "addr", ln.Addr().String(), "data", s.cfg.Server.Data)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()

	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
		s.log.Info("chatgate shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.cfg.Server.ShutdownTimeout))
		if err := hs.Shutdown(sctx); err != nil {
			s.log.Warn("shutdown deadline passed; cancelling requests still running", "err", err)
			cancelBase()
			_ = hs.Close()
		}
		cancel()
		<-errc
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return errors.Join(serveErr, s.Close(context.Background()))
}

// Close flushes key usage and audit events and closes the database. It is
// safe to call more than once.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.Share != nil {
			errs = append(errs, s.Share.Close(ctx))
		}
		if s.Datasets != nil {
			errs = append(errs, s.Datasets.Close(ctx))
		}
		if s.text != nil {
			errs = append(errs, s.text.Close())
		}
		if s.pdf != nil {
			errs = append(errs, s.pdf.Close())
		}
		if s.stopFollowing != nil {
			s.stopFollowing()
			s.following.Wait()
		}
		if s.Authn != nil {
			errs = append(errs, s.Authn.Close(ctx))
		}
		errs = append(errs, s.limits.close())
		errs = append(errs, s.be.close())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

func newLogger(c LoggingConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(c.Level))) // unknown or empty: info
	opts := &slog.HandlerOptions{Level: level}
	var w io.Writer = os.Stderr
	if strings.EqualFold(c.Format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
