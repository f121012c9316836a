package billing

import (
	"fmt"
	"math"
)

// Price is what a model costs, in points per 1,000 tokens.
type Price struct {
	Input  float64 `json:"input" yaml:"input"`
	Output float64 `json:"output" yaml:"output"`
}

// The default price applies to every model the table does not name, the
// offline ones included, so quotas bite on a fresh server.
const (
	DefaultInputPrice  = 1.0 // points per 1,000 input tokens
	DefaultOutputPrice = 2.0 // points per 1,000 output tokens
)

// PriceScale converts points to FastGPT's responseData price field.
const PriceScale = 100000

// Prices is a price table. Its zero value prices every model at Default,
// or the default price constants when Default is zero.
type Prices struct {
	Models  map[string]Price
	Default Price
}

// Of returns the price of model.
func (p *Prices) Of(model string) Price {
	if pr, ok := p.Models[model]; ok {
		return pr
	}
	if p.Default != (Price{}) {
		return p.Default
	}
	return Price{Input: DefaultInputPrice, Output: DefaultOutputPrice}
}

// Points returns the points that in input and out output tokens of model
// cost.
func (p *Prices) Points(model string, in, out int) float64 {
	pr := p.Of(model)
	return (float64(in)*pr.Input + float64(out)*pr.Output) / 1000
}

// Validate reports negative or non-finite prices.
func (p *Prices) Validate() error {
	for m, pr := range p.Models {
		if !pr.valid() {
			return fmt.Errorf("billing: price of %q must be a finite, non-negative number", m)
		}
	}
	if !p.Default.valid() {
		return fmt.Errorf("billing: default price must be a finite, non-negative number")
	}
	return nil
}

// valid is false for NaN too, which every comparison rejects.
func (pr Price) valid() bool {
	return pr.Input >= 0 && pr.Output >= 0 && !math.IsInf(pr.Input, 0) && !math.IsInf(pr.Output, 0)
}
