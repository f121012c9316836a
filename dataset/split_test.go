package dataset_test

import (
	"math/rand"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/cl100k"
	"github.com/chatgate/chatgate/dataset"
)

// A word longer than a chunk is cut into chunks that each fit, measured
// by the real counter, and that together are the word; the splitter does
// not measure it character by character (that was seconds a megabyte).
func TestSplitTextLongWord(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	b := make([]byte, 256<<10)
	for i := range b {
		b[i] = byte('a' + rng.Intn(26))
	}
	word := string(b)
	var counter cl100k.Counter
	calls := 0
	count := func(s string) int { calls++; return counter.Count(s) }
	for _, text := range []string{word, "intro: " + word + " and the end.", strings.Repeat("长", 40000)} {
		calls = 0
		chunks, err := dataset.SplitText(text, 512, 0, count)
		if err != nil {
			t.Fatal(err)
		}
		squeeze := func(s string) string { return strings.Join(strings.Fields(s), "") }
		if squeeze(strings.Join(chunks, "")) != squeeze(text) {
			t.Fatalf("%d chunks are not the text", len(chunks))
		}
		for _, c := range chunks {
			if n := counter.Count(c); n > 512 || strings.Contains(c, "\u2063") {
				t.Fatalf("chunk of %d bytes holds %d tokens (or a mark)", len(c), n)
			}
		}
		if runes := len([]rune(text)); calls > runes/8 {
			t.Fatalf("%d calls to count for %d characters", calls, runes)
		}
	}
	// U+2063, the mark it cuts at, is dropped from incoming text
	chunks, err := dataset.SplitText("in\u2063visible", 100, 0, nil)
	if err != nil || len(chunks) != 1 || chunks[0] != "invisible" {
		t.Fatalf("chunks %q, %v", chunks, err)
	}
}

// A text of punctuation alone stays one chunk: its pieces, glued to the
// first, are the whole text, in order.
func TestSplitTextPunctuation(t *testing.T) {
	text := strings.Repeat("=-", 200000)
	chunks, err := dataset.SplitText(text, 512, 0, nil)
	if err != nil || len(chunks) != 1 || chunks[0] != text {
		t.Fatalf("%d chunks, %v", len(chunks), err)
	}
}

func TestSplitTextWithSeparatorAndWhole(t *testing.T) {
	words := func(s string) int { return len(strings.Fields(s)) }
	long := strings.Repeat("a b c d e. ", 10) // 50 words
	got, err := dataset.SplitTextWith("one two\n##\n\n##three##"+long, dataset.SplitOptions{ChunkSize: 10, Separator: "##", MaxPiece: 20, Count: words})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 6 || got[0] != "one two" || got[1] != "three" {
		t.Fatalf("separator: %q; want the short pieces whole, empty ones dropped, the long one cut at 10", got)
	}
	for _, c := range got[2:] {
		if words(c) > 10 {
			t.Fatalf("a cut piece of %d words: %q", words(c), c)
		}
	}
	// Whole keeps a text of at most Whole as one chunk, trimmed
	text := " one two three four five six. seven eight nine ten eleven twelve. "
	if got, _ := dataset.SplitTextWith(text, dataset.SplitOptions{ChunkSize: 6, Whole: 12, Count: words}); len(got) != 1 || got[0] != strings.TrimSpace(text) {
		t.Fatalf("whole: %q", got)
	}
	if got, _ := dataset.SplitTextWith(text, dataset.SplitOptions{ChunkSize: 6, Whole: 11, Count: words}); len(got) < 2 {
		t.Fatalf("over Whole: %q; want it split", got)
	}
}
