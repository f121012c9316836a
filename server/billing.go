package server

import (
	"context"
	"fmt"

	"github.com/chatgate/chatgate/billing"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/shareauth"
)

// BillingConfig holds the price table.
type BillingConfig struct {
	// Prices in points per 1,000 tokens, by model name.
	Prices map[string]billing.Price `yaml:"prices"`
	// DefaultPrice applies to models without an entry; when zero, 1 point
	// per 1,000 input and 2 per 1,000 output tokens.
	DefaultPrice billing.Price `yaml:"default_price"`
}

// openBilling builds the ledger and the accountant, and brings key counters
// up to the ledger, which may hold usage a crash kept from the counters.
func (s *Server) openBilling(ctx context.Context) error {
	prices := &billing.Prices{Models: s.cfg.Billing.Prices, Default: s.cfg.Billing.DefaultPrice}
	if err := prices.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	opts := billing.AccountantOptions{Ledger: s.be.ledger, Prices: prices, Keys: s.Authn, Logger: s.log}
	s.limits.budgets(&opts)
	s.Billing = billing.NewAccountant(opts)
	if s.limits != nil {
		// The keys' quota counters are Redis's, rebuilt from the ledger:
		// nothing to catch up, and a read of every key's counter to skip.
		return nil
	}
	n, err := s.Billing.Reconcile(ctx, s.Authn)
	if err != nil {
		return fmt.Errorf("billing: reconciling key usage: %w", err)
	}
	if n > 0 {
		s.log.Info("billing: key usage caught up from the ledger", "keys", n)
		return s.Authn.Flush(ctx)
	}
	return nil
}

// chatUsage records chat usage in the ledger and in the token metrics.
// Share-link chats also charge their link.
type chatUsage struct {
	acct    *billing.Accountant
	metrics *usageMetrics
	share   *shareauth.Service
}

func (u chatUsage) RecordChatUsage(ctx context.Context, r chat.UsageRecord) error {
	_ = u.metrics.RecordChatUsage(ctx, r)
	rec := &billing.Record{Source: billing.SourceChat, TeamID: r.TeamID, KeyID: r.KeyID,
		AppID: r.AppID, ShareID: r.ShareID, Module: r.Module, Model: r.Model, InputTokens: r.InputTokens,
		OutputTokens: r.OutputTokens, Time: r.Time}
	if err := u.acct.Record(ctx, rec); err != nil {
		return err
	}
	if r.ShareID != "" && rec.Points > 0 {
		return u.share.Charge(ctx, r.ShareID, rec.Points)
	}
	return nil
}

// datasetUsage records training and search usage in the ledger.
type datasetUsage struct {
	acct *billing.Accountant
}

func (u datasetUsage) RecordDatasetUsage(ctx context.Context, r dataset.UsageRecord) error {
	src := billing.SourceTraining
	if r.Module == dataset.ModuleSearch || r.Module == dataset.ModuleRerank || r.Module == dataset.ModuleQueryExtension {
		src = billing.SourceSearch
	}
	return u.acct.Record(ctx, &billing.Record{ID: r.ID, Source: src, TeamID: r.TeamID, KeyID: r.KeyID, DatasetID: r.DatasetID,
		BillID: r.BillID, Module: r.Module, Model: r.Model, InputTokens: r.InputTokens, OutputTokens: r.OutputTokens,
		Time: r.Time})
}
