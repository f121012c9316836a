package dataset

import (
	"io"
	"log"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/tmc/langchaingo/textsplitter"
)

// recursiveSplitter cuts as langchaingo's splitter, which it was ported
// from, on texts of words, Chinese, punctuation and every separator, with
// and without overlap.
func TestRecursiveSplitterMatchesLangchaingo(t *testing.T) {
	defer log.SetOutput(log.Writer())
	log.SetOutput(io.Discard) // langchaingo warns of long chunks there
	pieces := []string{"alpha", "beta", "退货", "期限", "。", "，", ". ", ", ", " ", "\n", "\n\n", sentenceMark, clauseMark, wordMark,
		strings.Repeat("x", 40), "電影《鈴芽之旅》"}
	seps := []string{"\n\n", "\n", sentenceMark, clauseMark, " ", wordMark, ""}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 2000 {
		var b strings.Builder
		for range rng.IntN(60) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		text := b.String()
		size := 4 + rng.IntN(60)
		overlap := rng.IntN(size/2 + 1)
		length := func(s string) int { return len([]rune(s)) }
		if round%2 == 1 {
			length = func(s string) int { return len(strings.Fields(s)) + len(s)/7 }
		}
		want, err := textsplitter.NewRecursiveCharacter(textsplitter.WithSeparators(seps), textsplitter.WithChunkSize(size),
			textsplitter.WithChunkOverlap(overlap), textsplitter.WithLenFunc(length)).SplitText(text)
		if err != nil {
			t.Fatal(err)
		}
		got := recursiveSplitter{size: size, overlap: overlap, length: length}.split(text, seps)
		if len(got) == 0 && len(want) == 0 {
			continue
		}
		if !slices.Equal(got, want) {
			t.Fatalf("size %d, overlap %d, text %q:\ngot  %q\nwant %q", size, overlap, text, got, want)
		}
	}
}
