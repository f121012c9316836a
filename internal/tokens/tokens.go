// Package tokens counts tokens the way OpenAI's cl100k_base encoder does,
// from the encoder embedded in the module: chat and dataset both bill by it.
package tokens

import (
	"fmt"
	"sync"

	"github.com/pkoukk/tiktoken-go"
	tiktoken_loader "github.com/pkoukk/tiktoken-go-loader"
)

// cl100kPattern is cl100k_base's pre-tokenizer, as tiktoken defines it.
const cl100kPattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

// Counter counts tokens with cl100k_base, loaded from the encoder
// embedded in tiktoken-go-loader: nothing is downloaded, ever. The encoder
// is built on first use (it takes a moment); call Warm to build it early.
// Its zero value is ready.
type Counter struct {
	once sync.Once
	enc  *tiktoken.Tiktoken
	err  error
}

func (c *Counter) load() {
	c.once.Do(func() {
		ranks, err := tiktoken_loader.NewOfflineLoader().LoadTiktokenBpe("cl100k_base.tiktoken")
		if err != nil {
			c.err = fmt.Errorf("tokens: load cl100k_base: %w", err)
			return
		}
		special := map[string]int{
			tiktoken.ENDOFTEXT: 100257, tiktoken.FIM_PREFIX: 100258, tiktoken.FIM_MIDDLE: 100259,
			tiktoken.FIM_SUFFIX: 100260, tiktoken.ENDOFPROMPT: 100276,
		}
		bpe, err := tiktoken.NewCoreBPE(ranks, special, cl100kPattern)
		if err != nil {
			c.err = fmt.Errorf("tokens: build cl100k_base: %w", err)
			return
		}
		set := make(map[string]any, len(special))
		for k := range special {
			set[k] = true
		}
		c.enc = tiktoken.NewTiktoken(bpe, &tiktoken.Encoding{Name: tiktoken.MODEL_CL100K_BASE,
			PatStr: cl100kPattern, MergeableRanks: ranks, SpecialTokens: special}, set)
	})
}

// Warm builds the encoder now and reports whether it could be built.
func (c *Counter) Warm() error {
	c.load()
	return c.err
}

// Count returns the tokens of text. Special-token text is counted as plain
// text, since it came from users.
func (c *Counter) Count(text string) int {
	if text == "" {
		return 0
	}
	c.load()
	if c.enc == nil {
		return (len(text) + 3) / 4 // the usual estimate, should the encoder be missing
	}
	return len(c.enc.EncodeOrdinary(text))
}
