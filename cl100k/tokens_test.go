package cl100k

import (
	"context"
	"encoding/base64"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
	"github.com/pkoukk/tiktoken-go"
	tiktoken_loader "github.com/pkoukk/tiktoken-go-loader"
)

// The expected counts are cl100k_base's, as OpenAI's tokenizer reports them.
func TestCount(t *testing.T) {
	var c Counter
	if err := c.Warm(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		text string
		want int
	}{
		{"", 0},
		{"hello world", 2},
		{"tiktoken is great!", 6},
		{"<|endoftext|>", 7}, // user text, not the special token
	} {
		if got := c.Count(tc.text); got != tc.want {
			t.Errorf("Count(%q) = %d, want %d", tc.text, got, tc.want)
		}
	}
	if n := c.Count("电影《铃芽之旅》的导演是新海诚。"); n < 8 || n > 30 {
		t.Errorf("Chinese sentence counted %d tokens", n)
	}
}

// tiktokenOf is tiktoken-go's encoder over the same ranks and pattern, as
// this package used it before counting was its own: the reference.
func tiktokenOf(t testing.TB, c *Counter) *tiktoken.Tiktoken {
	t.Helper()
	if err := c.Warm(); err != nil {
		t.Fatal(err)
	}
	ranks, err := tiktoken_loader.NewOfflineLoader().LoadTiktokenBpe("cl100k_base.tiktoken")
	if err != nil {
		t.Fatal(err)
	}
	special := map[string]int{tiktoken.ENDOFTEXT: 100257}
	bpe, err := tiktoken.NewCoreBPE(ranks, special, cl100kPattern)
	if err != nil {
		t.Fatal(err)
	}
	return tiktoken.NewTiktoken(bpe, &tiktoken.Encoding{Name: tiktoken.MODEL_CL100K_BASE, PatStr: cl100kPattern,
		MergeableRanks: ranks, SpecialTokens: special}, map[string]any{})
}

// realTexts is the repository's own text: prose and tables (README,
// BENCHMARKS), Chinese and English question-answer pairs (the retrieval
// corpus), and Go code with its comments.
func realTexts(t *testing.T) map[string]string {
	t.Helper()
	files := []string{"../README.md", "../BENCHMARKS.md"}
	for _, pattern := range []string{"../dataset/testdata/retrieval/*", "../*/*.go", "../*/*/*.go"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = string(b)
	}
	if len(out) < 50 {
		t.Fatalf("only %d files of real text", len(out))
	}
	return out
}

// samples cover what real text holds beyond the repository's files.
var samples = []string{
	"It's 'RE' 'll don't WE'VE I'M you'D 'Sa 're'd '' 'x",
	"Numbers: 1 12 123 1234 12345678901234567890, 3.14159, -42, 1e10, ٣٤٥ ½ Ⅻ 2024-05-08T18:07:57Z",
	"line one\nline two\r\nline three\n\n\n  indented\n\t\ttabbed\n   \n \n",
	"!!! ??? ... --- === *** ### ::: ;;; /// \\\\\\ ((())) [[]] {{}} <<>> \"\" `` ~~ ^^ %% $$ @@ &&",
	"a\u00a0b\u3000c\u2028d\u0085e\u000bf\u000cg  \u00a0 h",
	"电影《铃芽之旅》的导演是新海诚。他说：“我想拍一部关于灾难的电影！”你觉得呢？好的，谢谢。",
	"東京は日本の首都です。ひらがなとカタカナ、そして漢字。한국어 문장도 있습니다. ภาษาไทยไม่มีช่องว่าง",
	"नमस्ते दुनिया, यह हिंदी है। مرحبا بالعالم، هذه عربية. Привет, мир! Ελληνικά. e\u0301 café naïve",
	"emoji 😀😃😄 👍🏽 🇨🇳 👨‍👩‍👧 and symbols © ® ™ € £ ¥ → ← ∑ ∫ √",
	`{"model":"gpt-4","messages":[{"role":"user","content":"hi"}],"stream":false,"temperature":0.7}`,
	"https://example.com/path/to/page?query=1&other=two#frag mailto:someone@example.org ftp://x.y",
	base64.StdEncoding.EncodeToString([]byte(strings.Repeat("binary\x00\x01\x02 data ", 40))),
	"0xdeadbeef 0XCAFE 7f3a9c2e1b4d5f60 sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
	"func main() {\n\tfmt.Println(\"hello\")\n\tfor i := 0; i < 10; i++ {\n\t\tx += i\n\t}\n}\n",
	"    four spaces\n        eight\n" + strings.Repeat(" ", 40) + "forty\n" + strings.Repeat("\t", 12) + "x",
	"trailing spaces   ", "   ", "\n", " \n ", "x\r", "'", "''s", " 's", "\t's", "1'll", "a1b2c3", " 123", "\n123",
}

// Counts equal tiktoken's own on real text of every kind.
func TestCountMatchesTiktoken(t *testing.T) {
	var c Counter
	enc := tiktokenOf(t, &c)
	texts := realTexts(t)
	for i, s := range samples {
		texts["sample "+string(rune('A'+i))] = s
	}
	total := 0
	for name, text := range texts {
		want := len(enc.EncodeOrdinary(text))
		total += want
		if got := c.Count(text); got != want {
			t.Errorf("%s: Count = %d, tiktoken %d", name, got, want)
		}
	}
	t.Logf("%d texts, %d tokens", len(texts), total)
	bad := "valid \xff\xfe then \xc3 bad \xe4\xb8 bytes"
	if got, want := c.Count(bad), len(enc.EncodeOrdinary(bad)); got != want {
		t.Errorf("invalid UTF-8: Count = %d, tiktoken %d", got, want)
	}
}

// pieces splits text with pieceEnd.
func pieces(text string) []string {
	var out []string
	for i := 0; i < len(text); {
		j := pieceEnd(text, i)
		if j <= i || j > len(text) {
			panic("pieceEnd went nowhere")
		}
		out = append(out, text[i:j])
		i = j
	}
	return out
}

// regexpPieces splits text with the pattern itself, as tiktoken does.
func regexpPieces(re *regexp2.Regexp, text string) []string {
	var out []string
	m, _ := re.FindStringMatch(text)
	for m != nil {
		out = append(out, m.String())
		m, _ = re.FindNextMatch(m)
	}
	return out
}

func samePieces(t *testing.T, re *regexp2.Regexp, text string) bool {
	t.Helper()
	got, want := pieces(text), regexpPieces(re, text)
	if !slices.Equal(got, want) {
		t.Errorf("%q:\n pieceEnd %q\n regexp   %q", text, got, want)
		return false
	}
	return true
}

// alphabet holds a character of each kind the pattern tells apart, and
// the ones its alternatives name.
var alphabet = []string{"a", "Z", "é", "中", "ー", "s", "S", "t", "T", "r", "e", "E", "v", "m", "l", "L", "d",
	"1", "٣", "½", "Ⅻ", "!", ".", "-", "'", "\"", "\u0301", "😀", "\ufffd",
	" ", " ", "\t", "\n", "\r", "\v", "\f", "\u00a0", "\u3000", "\u2028", "\u0085"}

// pieceEnd splits every text as the pattern does: real text, and random
// strings over every kind of character (seeded, so a failure repeats).
func TestPiecesMatchPattern(t *testing.T) {
	re := regexp2.MustCompile(cl100kPattern, regexp2.None)
	for name, text := range realTexts(t) {
		if !samePieces(t, re, text) {
			t.Fatalf("%s", name)
		}
	}
	for _, s := range samples {
		samePieces(t, re, s)
	}
	rng := rand.New(rand.NewSource(1))
	var b strings.Builder
	for range 20000 {
		b.Reset()
		for range rng.Intn(24) {
			b.WriteString(alphabet[rng.Intn(len(alphabet))])
		}
		if !samePieces(t, re, b.String()) {
			t.FailNow()
		}
	}
}

// No piece joins a non-space character with a space or tab after it, so
// a text cut there counts as the sum of its parts (the property chunked
// counting would rest on; the pre-tokenizer here needs no cutting).
func TestNoPieceSpansNonSpaceThenSpace(t *testing.T) {
	var c Counter
	enc := tiktokenOf(t, &c)
	for name, text := range realTexts(t) {
		for _, p := range pieces(text) {
			for i, r := range p {
				if rest := p[i+utf8.RuneLen(r):]; rest != "" && (rest[0] == ' ' || rest[0] == '\t') && classOf(r) != space && classOf(r) != newline {
					t.Fatalf("%s: piece %q joins %q and the space after it", name, p, r)
				}
			}
		}
		var parts []string
		from := 0
		for i := 1; i < len(text); i++ {
			if text[i] != ' ' && text[i] != '\t' {
				continue
			}
			if r, _ := utf8.DecodeLastRuneInString(text[:i]); classOf(r) != space && classOf(r) != newline {
				parts, from = append(parts, text[from:i]), i
			}
		}
		parts = append(parts, text[from:])
		sum := 0
		for _, p := range parts {
			sum += len(enc.EncodeOrdinary(p))
		}
		if whole := len(enc.EncodeOrdinary(text)); sum != whole {
			t.Fatalf("%s: cut before spaces, tiktoken counts %d; whole, %d", name, sum, whole)
		}
	}
}

func FuzzPieces(f *testing.F) {
	re := regexp2.MustCompile(cl100kPattern, regexp2.None)
	for _, s := range samples {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if !utf8.ValidString(text) {
			text = string([]rune(text))
		}
		samePieces(t, re, text)
	})
}

// longRuns are single pieces far longer than Window, of the kinds real
// input holds: letters of one script (CJK text without punctuation,
// base64 without its digits and signs, a German compound), random
// letters, whitespace and punctuation.
func longRuns(t testing.TB, size int) map[string]string {
	t.Helper()
	raw, err := os.ReadFile("../dataset/testdata/retrieval/corpus.tsv")
	if err != nil {
		t.Fatal(err)
	}
	keep := func(text string, ok func(rune) bool) string {
		return strings.Map(func(r rune) rune {
			if ok(r) {
				return r
			}
			return -1
		}, text)
	}
	rng := rand.New(rand.NewSource(2))
	blob := make([]byte, size)
	rng.Read(blob)
	random := make([]byte, size)
	for i := range random {
		random[i] = byte('a' + rng.Intn(26))
	}
	runs := map[string]string{
		"CJK":     keep(string(raw), func(r rune) bool { return r > 0x2e80 && classOf(r) == letter }),
		"base64":  keep(base64.StdEncoding.EncodeToString(blob), func(r rune) bool { return classOf(r) == letter }),
		"German":  strings.Repeat("Donaudampfschifffahrtsgesellschaftskapitänswitwe", size/40),
		"random":  string(random),
		"spaces":  strings.Repeat(" ", size),
		"tabs":    strings.Repeat(" \t", size/2),
		"equals":  strings.Repeat("=", size),
		"symbols": strings.Repeat("-*-~", size/4),
	}
	for name, run := range runs {
		for len(run) < size {
			run += run
		}
		run = run[:size]
		for !utf8.ValidString(run) {
			run = run[:len(run)-1]
		}
		if pieceEnd(run, 0) != len(run) {
			t.Fatalf("%s is not one piece", name)
		}
		runs[name] = run
	}
	return runs
}

// The heap finds tiktoken's merges, also in pieces far longer than a
// window: unwindowed, it counts exactly what tiktoken counts.
func TestMergerMatchesTiktoken(t *testing.T) {
	var c Counter
	enc := tiktokenOf(t, &c)
	var m merger
	for name, run := range longRuns(t, 6000) {
		for _, n := range []int{2, 3, 17, Window - 1, Window, Window + 1, 1000, len(run)} {
			p := run[:n]
			for !utf8.ValidString(p) {
				p = p[:len(p)-1]
			}
			if c.vocab.rank(p) >= 0 || len(p) < 2 {
				continue // a token: tiktoken does not merge it
			}
			if got, want := m.count(c.vocab, c.pairs, p), len(enc.EncodeOrdinary(p)); got != want {
				t.Errorf("%s, %d bytes: merger %d, tiktoken %d", name, len(p), got, want)
			}
		}
	}
}

// windowBound is the most a long piece's count may differ from the
// exact one, as the package documents: one token per window.
func windowBound(size int) int { return (size + Window - keepOut - 128) / (Window - keepOut - 127) }

// A piece longer than Window is counted in windows; the count stays
// within the documented bound of the exact one (the whole piece merged
// at once, which TestMergerMatchesTiktoken holds to tiktoken's).
func TestLongPieceWindows(t *testing.T) {
	var c Counter
	if err := c.Warm(); err != nil {
		t.Fatal(err)
	}
	var m merger
	for name, run := range longRuns(t, 64<<10) {
		exact := m.count(c.vocab, c.pairs, run)
		got := c.Count(run)
		t.Logf("%-8s %6d bytes: exact %6d, windowed %6d", name, len(run), exact, got)
		if d := got - exact; d > windowBound(len(run)) || -d > windowBound(len(run)) {
			t.Errorf("%s: windowed count %d is %+d from %d, more than one a window", name, got, d, exact)
		}
	}
}

// Runs built to trip the windows up: few characters of one kind, in
// patterns (merges that run on from the left) and at random, whitespace
// with its long tokens.
func TestLongPieceWindowsProvoked(t *testing.T) {
	var c Counter
	if err := c.Warm(); err != nil {
		t.Fatal(err)
	}
	var m merger
	kinds := [][]string{
		{"a", "b", "c", "e", "i", "n", "s", "t", "r", "l", "x", "q", "中", "文", "の", "ー", "é", "ß"},
		{"-", "=", "*", "#", "!", "?", ".", "/", "(", ")", "[", "]", "{", "}", "<", ">", "~", "_", "|", "😀"},
		{" ", " ", " ", "\t", "\u00a0", "\u3000"},
	}
	rng := rand.New(rand.NewSource(11))
	runs, differ := 0, 0
	for trial := range 1000 {
		kind := kinds[trial%len(kinds)]
		chars := make([]string, 1+rng.Intn(4))
		for i := range chars {
			chars[i] = kind[rng.Intn(len(kind))]
		}
		pattern := make([]string, 1+rng.Intn(6))
		for i := range pattern {
			pattern[i] = chars[rng.Intn(len(chars))]
		}
		var b strings.Builder
		for size := Window + 100 + rng.Intn(4000); b.Len() < size; {
			if rng.Intn(2) == 0 {
				b.WriteString(strings.Join(pattern, ""))
			} else {
				b.WriteString(chars[rng.Intn(len(chars))])
			}
		}
		run := b.String()
		run = run[:pieceEnd(run, 0)]
		if len(run) <= Window {
			continue
		}
		runs++
		exact, got := m.count(c.vocab, c.pairs, run), c.Count(run)
		if got != exact {
			differ++
		}
		if d := got - exact; d > windowBound(len(run)) || -d > windowBound(len(run)) {
			t.Errorf("%q...: windowed count %d is %+d from %d", run[:40], got, d, exact)
		}
	}
	t.Logf("%d runs, %d counted otherwise than merged whole", runs, differ)
	if runs < 500 {
		t.Fatalf("only %d runs longer than a window", runs)
	}
}

// CountContext stops at its first look at an ended context: it has done
// no work, and says why.
func TestCountContextCancelled(t *testing.T) {
	c := &Counter{}
	var looks []int
	c.checked = func(done int) { looks = append(looks, done) }
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n, err := c.CountContext(ctx, strings.Repeat("word ", 100000))
	if !errors.Is(err, context.Canceled) || n != 0 {
		t.Fatalf("CountContext on a cancelled context = %d, %v", n, err)
	}
	if len(looks) != 1 || looks[0] != 0 {
		t.Fatalf("looks at the context: %v, want one before any work", looks)
	}
}

// A context that ends mid-count stops it at the next look, long before
// the end of the text, in ordinary text and inside one long piece alike.
func TestCountContextStopsEarly(t *testing.T) {
	for name, text := range map[string]string{
		"words":    strings.Repeat("lorem ipsum dolor ", 60000),
		"one word": strings.Repeat("abcdefghij", 100000),
	} {
		t.Run(name, func(t *testing.T) {
			c := &Counter{}
			var looks []int
			c.checked = func(done int) { looks = append(looks, done) }
			whole, err := c.CountContext(context.Background(), text)
			if err != nil || whole != c.Count(text) {
				t.Fatalf("uncancelled: %d, %v", whole, err)
			}
			if want := (len(text) + checkEvery - 1) / checkEvery; len(looks) < want {
				t.Fatalf("an uncancelled count looked %d times, want at least %d", len(looks), want)
			}

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			looks = nil
			c.checked = func(done int) {
				looks = append(looks, done)
				if len(looks) == 3 {
					cancel()
				}
			}
			n, err := c.CountContext(ctx, text)
			if !errors.Is(err, context.Canceled) || n != 0 {
				t.Fatalf("CountContext cancelled mid-way = %d, %v", n, err)
			}
			if len(looks) != 3 || looks[2] >= len(text)/2 {
				t.Fatalf("looks %v: it went on after the context ended (text is %d bytes)", looks, len(text))
			}
		})
	}
}
