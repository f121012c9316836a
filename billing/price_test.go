package billing_test

import (
	"math"
	"testing"

	"github.com/chatgate/chatgate/billing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestPrices(t *testing.T) {
	p := &billing.Prices{Models: map[string]billing.Price{"gpt": {Input: 2, Output: 6}}}
	if got := p.Points("gpt", 1000, 500); !near(got, 5) {
		t.Fatalf("gpt: %v", got)
	}
	if got := p.Points("extractive", 1000, 1000); !near(got, billing.DefaultInputPrice+billing.DefaultOutputPrice) || got == 0 {
		t.Fatalf("unpriced model: %v", got)
	}
	p.Default = billing.Price{Input: 0.5, Output: 0.5}
	if got := p.Points("other", 2000, 0); !near(got, 1) {
		t.Fatalf("configured default: %v", got)
	}
	if err := (&billing.Prices{Models: map[string]billing.Price{"x": {Input: -1}}}).Validate(); err == nil {
		t.Fatal("negative price accepted")
	}
}
