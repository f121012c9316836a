package dataset

import (
	"context"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Embedder turns texts into vectors, one per text, all of one length.
// LocalEmbedder is the built-in one; dataset/embedding has clients of
// OpenAI-compatible endpoints and Ollama.
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// EmbedderFunc adapts a function to an Embedder.
type EmbedderFunc func(ctx context.Context, texts []string) ([][]float32, error)

// Embed calls f.
func (f EmbedderFunc) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	return f(ctx, texts)
}

// DefaultDimensions is the length of the LocalEmbedder's vectors.
const DefaultDimensions = 256

// LocalEmbedder embeds text with hashed features and needs no network or
// model file: Latin words (and their character trigrams) and Han, kana and
// Hangul characters (single and in pairs) are hashed into Dimensions signed
// buckets, and the vector is L2-normalised. It is deterministic, so the same
// text always gets the same vector. Texts that share words or characters
// score high; it knows no synonyms. Its zero value uses DefaultDimensions.
type LocalEmbedder struct {
	Dimensions int
}

// Embed implements Embedder.
func (e LocalEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	dim := e.Dimensions
	if dim <= 0 {
		dim = DefaultDimensions
	}
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		out[i] = embedLocal(t, dim)
	}
	return out, nil
}

func embedLocal(text string, dim int) []float32 {
	v := make([]float32, dim)
	addHash := func(x uint64, w float32) {
		if x>>63 == 1 {
			w = -w
		}
		v[x%uint64(dim)] += w
	}
	add := func(feature string, w float32) { addHash(fnv1a(feature), w) }
	eachTerm(text, func(term string, cjk bool) {
		if cjk {
			add(term, 1)
			return
		}
		if stopword(term) {
			return
		}
		add(term, 1)
		if r := []rune("<" + term + ">"); len(r) > 4 {
			for i := 0; i+3 <= len(r); i++ {
				addHash(fnv1aRunes(r[i:i+3]), 0.3)
			}
		}
	})
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	if n == 0 {
		// No letters or digits (punctuation, emoji, nothing): the text
		// itself is the one feature, so the vector still has a direction.
		// A zero vector cannot be normalised, and the NaN similarities it
		// gets in the index push real matches out of search results.
		add(strings.TrimSpace(text), 1)
		n = 1
	}
	if n > 0 {
		inv := float32(1 / math.Sqrt(n))
		for i := range v {
			v[i] *= inv
		}
	}
	return v
}

// eachTerm calls fn with the terms of text: lower-cased Latin/digit words,
// and, for runs of CJK characters, each character and each adjacent pair.
func eachTerm(text string, fn func(term string, cjk bool)) {
	text = strings.ToLower(text)
	var word []rune
	var prev rune
	flush := func() {
		if len(word) > 0 {
			fn(string(word), false)
			word = word[:0]
		}
	}
	for _, r := range text {
		switch {
		case isCJK(r):
			flush()
			if !cjkStop(r) {
				fn(string(r), true)
			}
			if prev != 0 && !(cjkStop(prev) && cjkStop(r)) {
				fn(string([]rune{prev, r}), true)
			}
			prev = r
			continue
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			word = append(word, r)
		default:
			flush()
		}
		prev = 0
	}
	flush()
}

func isCJK(r rune) bool {
	if r < 0x1100 { // below every range of the four scripts: most text, at once
		return false
	}
	return unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) ||
		unicode.Is(unicode.Katakana, r) || unicode.Is(unicode.Hangul, r)
}

// cjkStop reports particles and question words too common to tell texts
// apart: alone they are no feature, and a pair of them (怎么, 什么, 是谁)
// is none either; paired with a content character they still count.
func cjkStop(r rune) bool {
	switch r {
	case '的', '了', '是', '在', '和', '有', '我', '你', '他', '她', '它', '这', '那', '吗', '呢', '吧', '啊', '么', '什', '个', '一', '也', '就', '都', '与', '及',
		'怎', '哪', '谁', '几', '多', '少', '为', '如', '何', '能', '可', '以', '要', '会', '该', '应':
		return true
	}
	return false
}

func stopword(w string) bool {
	switch w {
	case "a", "an", "the", "is", "are", "was", "were", "be", "of", "to", "in", "on", "and", "or",
		"for", "with", "at", "by", "it", "this", "that", "what", "which", "who", "how", "do", "does",
		"did", "i", "you", "me", "my", "your", "can", "from", "as", "about":
		return true
	}
	return false
}

// fnv1a is FNV-1a, 64-bit, over s's bytes, without hash.Hash's allocation.
func fnv1a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// fnv1aRunes is fnv1a of string(rs), without making the string: a long
// word has a trigram per character.
func fnv1aRunes(rs []rune) uint64 {
	h := uint64(14695981039346656037)
	var b [utf8.UTFMax]byte
	for _, r := range rs {
		for _, c := range b[:utf8.EncodeRune(b[:], r)] {
			h ^= uint64(c)
			h *= 1099511628211
		}
	}
	return h
}
