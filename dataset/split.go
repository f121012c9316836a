package dataset

import (
	"strings"
	"unicode"

	"github.com/tmc/langchaingo/textsplitter"
)

// Markers put after sentence and clause ends before splitting, so that the
// splitter cuts there while the punctuation stays with the text before it;
// they are removed from the chunks. Both are Unicode separators no text
// field keeps (incoming ones become line breaks).
const (
	sentenceMark = "\u2029"
	clauseMark   = "\u2028"
)

// SplitText cuts text into chunks of at most about chunkSize, measured by
// count (runes when nil), preferring paragraph breaks, then line breaks,
// then ends of sentences (。！？；.!?; in Chinese and Western punctuation),
// then clauses (，、,：:), then spaces. Consecutive chunks share up to overlap
// of their text. It is langchaingo's recursive character splitter, taught
// where Chinese sentences end.
func SplitText(text string, chunkSize, overlap int, count func(string) int) ([]string, error) {
	if chunkSize <= 0 {
		chunkSize = 512
	}
	overlap = max(0, min(overlap, chunkSize/2))
	if count == nil {
		count = func(s string) int { return len([]rune(s)) }
	}
	text = strings.NewReplacer(sentenceMark, "\n", clauseMark, "\n", "\r\n", "\n").Replace(text)
	text = strings.NewReplacer(
		"。", "。"+sentenceMark, "！", "！"+sentenceMark, "？", "？"+sentenceMark, "；", "；"+sentenceMark,
		". ", "."+sentenceMark+" ", "! ", "!"+sentenceMark+" ", "? ", "?"+sentenceMark+" ", "; ", ";"+sentenceMark+" ",
		"，", "，"+clauseMark, "、", "、"+clauseMark, "：", "："+clauseMark,
		", ", ","+clauseMark+" ", ": ", ":"+clauseMark+" ",
	).Replace(text)
	sp := textsplitter.NewRecursiveCharacter(
		textsplitter.WithSeparators([]string{"\n\n", "\n", sentenceMark, clauseMark, " ", ""}),
		textsplitter.WithChunkSize(chunkSize),
		textsplitter.WithChunkOverlap(overlap),
		textsplitter.WithLenFunc(func(s string) int {
			return count(strings.NewReplacer(sentenceMark, "", clauseMark, "").Replace(s))
		}),
	)
	parts, err := sp.SplitText(text)
	if err != nil {
		return nil, err
	}
	clean := strings.NewReplacer(sentenceMark, "", clauseMark, "")
	chunks := parts[:0]
	for _, p := range parts {
		p = strings.TrimSpace(clean.Replace(p))
		switch {
		case p == "":
		case len(chunks) > 0 && !strings.ContainsFunc(p, isWordRune):
			// Punctuation alone: the splitter cut a sentence just over
			// chunkSize before its final mark. The mark stays with its
			// sentence, a little over the size, rather than become a
			// chunk with nothing to search.
			chunks[len(chunks)-1] += p
		default:
			chunks = append(chunks, p)
		}
	}
	return chunks, nil
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }
