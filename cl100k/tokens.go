// Package cl100k counts tokens the way OpenAI's cl100k_base encoder does,
// from the encoder embedded in the module: chat and dataset both bill by it.
//
// Counting takes time linear in the text's length, whatever the text.
// tiktoken-go's encoder, which this package used before, does not: its
// byte-pair merge scans the whole piece for every merge, and a run of
// letters, spaces or punctuation is one piece, so a 128 KiB word took
// 10 s of CPU. Here the pre-tokenizer is a single hand-written pass
// (pieceEnd, held to the pattern's pieces by the tests) instead of a
// backtracking regular expression, merges are found with a tournament
// tree instead of a scan, and no more than Window bytes are merged at
// once.
//
// Counts equal tiktoken's for every text whose pieces are at most Window
// bytes long, which is ordinary text in any language: a piece is a word
// with the space before it, up to three digits, a run of punctuation or
// of whitespace. A longer piece is merged in windows of Window bytes; of
// each window's tokens only those ending keepOut bytes or more before its
// end are taken, and the next window starts where they end, on a token
// boundary, so both the window's artificial end and the course of merges
// that run on from the left (as in "-=-=-=") are respected. Such a count
// may differ from tiktoken's by at most one token per window; the tests
// found no difference at all, on long runs of CJK text, base64 letters,
// random letters, German compounds, whitespace and punctuation, and on
// tens of thousands of random runs built to provoke one.
package cl100k

import (
	"context"
	"fmt"
	"sync"
	"unicode/utf8"

	tiktoken_loader "github.com/pkoukk/tiktoken-go-loader"
)

const (
	// Window bounds the bytes byte-pair encoded at once, and so the cost
	// of a byte: a piece up to this long is counted exactly, a longer one
	// in windows this long. Real pieces are far shorter: 341 CJK
	// characters without a punctuation mark or digit fill it.
	Window = 1024

	// keepOut is how far from a window's end its tokens are not taken, as
	// what follows might merge with them: as far as the longest token (128
	// bytes, of spaces), which with less went wrong in whitespace runs. A
	// window moves on at least Window-keepOut-127 bytes.
	keepOut = 128

	// checkEvery is how many bytes CountContext counts between looks at
	// its context: well under a millisecond of work.
	checkEvery = 16 << 10
)

// Counter counts tokens with cl100k_base, loaded from the encoder
// embedded in tiktoken-go-loader: nothing is downloaded, ever. The encoder
// is built on first use (it takes a moment); call Warm to build it early.
// Its zero value is ready; it is safe for concurrent use.
type Counter struct {
	once    sync.Once
	vocab   *vocab
	pairs   *[1 << 16]int32 // the rank of each two bytes, or -1
	err     error
	mergers sync.Pool

	// checked, when set (by tests), is called at each look at the
	// context with the bytes counted so far.
	checked func(done int)
}

func (c *Counter) load() {
	c.once.Do(func() {
		ranks, err := tiktoken_loader.NewOfflineLoader().LoadTiktokenBpe("cl100k_base.tiktoken")
		if err != nil {
			c.err = fmt.Errorf("tokens: load cl100k_base: %w", err)
			return
		}
		c.vocab, c.pairs = newVocab(ranks), new([1 << 16]int32)
		for i := range c.pairs {
			c.pairs[i] = -1
			if r, ok := ranks[string([]byte{byte(i >> 8), byte(i)})]; ok {
				c.pairs[i] = int32(r)
			}
		}
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
	n, _ := c.CountContext(context.Background(), text)
	return n
}

// CountContext is Count for text a request brought: it returns 0 and
// ctx.Err() soon after ctx ends (it looks every 16 KiB), so that the work
// stops when the client leaves.
func (c *Counter) CountContext(ctx context.Context, text string) (int, error) {
	if text == "" {
		return 0, nil
	}
	c.load()
	if c.vocab == nil {
		return (len(text) + 3) / 4, nil // the usual estimate, should the encoder be missing
	}
	if !utf8.ValidString(text) {
		text = string([]rune(text)) // as tiktoken sees it: U+FFFD for each bad byte
	}
	var w counting
	defer w.done(c)
	n, next := 0, 0
	look := func(at int) error {
		if at < next {
			return nil
		}
		next = at + checkEvery
		if c.checked != nil {
			c.checked(at)
		}
		return ctx.Err()
	}
	for i := 0; i < len(text); {
		if err := look(i); err != nil {
			return 0, err
		}
		end := pieceEnd(text, i)
		switch p := text[i:end]; {
		case len(p) == 1:
			n++
		case len(p) <= Window:
			if c.vocab.rank(p) >= 0 {
				n++ // as tiktoken: a piece that is a token is one, whatever merging would give
			} else {
				n += w.merger(c).count(c.vocab, c.pairs, p)
			}
		default:
			for j := i; ; {
				if err := look(j); err != nil {
					return 0, err
				}
				if end-j <= Window {
					n += w.merger(c).count(c.vocab, c.pairs, text[j:end])
					break
				}
				k, adv := w.window(c, text[j:j+Window])
				n, j = n+k, j+adv
			}
		}
		i = end
	}
	return n, nil
}

// counting is one count's scratch: a merger from the pool, once a piece
// needs one, and the last window of a long piece with its result (a long
// run is often one pattern over and over, so the next window is the same).
type counting struct {
	m                    *merger
	last                 string
	lastTokens, lastNext int
}

func (w *counting) merger(c *Counter) *merger {
	if w.m == nil {
		w.m, _ = c.mergers.Get().(*merger)
		if w.m == nil {
			w.m = new(merger)
		}
	}
	return w.m
}

func (w *counting) done(c *Counter) {
	if w.m != nil {
		c.mergers.Put(w.m)
	}
}

// window counts the start of win, Window bytes of a longer piece: the
// tokens of its encoding but those within keepOut bytes of its end, which
// might merge differently with what follows. It returns how many and
// where they end, where the next window starts: on a token boundary of
// this one's encoding, so that merges which run on from the left (as in
// "-=-=-=") keep their course.
func (w *counting) window(c *Counter, win string) (tokens, next int) {
	if win == w.last {
		return w.lastTokens, w.lastNext
	}
	m := w.merger(c)
	m.count(c.vocab, c.pairs, win)
	tokens, next = m.keep(Window - keepOut)
	w.last, w.lastTokens, w.lastNext = win, tokens, next
	return tokens, next
}
