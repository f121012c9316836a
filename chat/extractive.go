package chat

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ExtractiveModelName is the name of the offline model.
const ExtractiveModelName = "extractive"

// Extractive is the offline model: it is not a language model and does not
// pretend to be one. It answers with the answer (or text) of the quote that
// best matches the question, or with the app's empty-answer text when
// retrieval found nothing. It streams word by word (character by
// character for CJK), so clients see a real stream. Its zero value is ready.
type Extractive struct{}

// Generate implements Model.
func (Extractive) Generate(ctx context.Context, req ModelRequest, onToken func(string) error) (ModelResult, error) {
	answer := req.EmptyAnswer
	if q, ok := bestQuote(req.Question, req.Quotes); ok {
		answer = q.A
		if strings.TrimSpace(answer) == "" {
			answer = q.Q
		}
	}
	for _, piece := range streamPieces(answer) {
		if err := ctx.Err(); err != nil {
			return ModelResult{}, err
		}
		if onToken == nil {
			continue
		}
		if err := onToken(piece); err != nil {
			return ModelResult{}, err
		}
	}
	return ModelResult{Text: answer, FinishReason: "stop"}, nil
}

// bestQuote picks the quote whose question and answer share the most
// character bigrams with the question, ties broken by retrieval score. The
// retriever already judged every quote relevant, so with quotes there is
// always an answer; without, there is none.
func bestQuote(question string, quotes []Quote) (Quote, bool) {
	if len(quotes) == 0 {
		return Quote{}, false
	}
	qg := bigrams(question)
	best, bestScore := Quote{}, -1.0
	for _, q := range quotes {
		s := overlap(qg, bigrams(q.Q+" "+q.A)) + q.Score*1e-3
		if s > bestScore {
			best, bestScore = q, s
		}
	}
	return best, len(quotes) > 0
}

// bigrams returns the set of lower-cased character bigrams of s's letters and
// digits, which match both space-separated and CJK text.
func bigrams(s string) map[[2]rune]struct{} {
	out := map[[2]rune]struct{}{}
	var prev rune
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsNumber(r) {
			prev = 0
			continue
		}
		r = unicode.ToLower(r)
		if prev != 0 {
			out[[2]rune{prev, r}] = struct{}{}
		}
		prev = r
	}
	return out
}

func overlap(a, b map[[2]rune]struct{}) float64 {
	n := 0
	for g := range a {
		if _, ok := b[g]; ok {
			n++
		}
	}
	return float64(n)
}

// streamPieces splits text into the deltas a stream sends: words with their
// following space, and single CJK characters.
func streamPieces(text string) []string {
	var out []string
	start := 0
	for i, r := range text {
		size := utf8.RuneLen(r)
		switch {
		case isCJK(r):
			if start < i {
				out = append(out, text[start:i])
			}
			out = append(out, text[i:i+size])
			start = i + size
		case unicode.IsSpace(r):
			out = append(out, text[start:i+size])
			start = i + size
		}
	}
	if start < len(text) {
		out = append(out, text[start:])
	}
	return out
}

func isCJK(r rune) bool {
	return unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) ||
		unicode.Is(unicode.Katakana, r) || unicode.Is(unicode.Hangul, r) ||
		(r >= 0x3000 && r <= 0x303F) || (r >= 0xFF00 && r <= 0xFFEF)
}
