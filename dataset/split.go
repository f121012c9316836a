package dataset

import (
	"cmp"
	"strings"
	"unicode"
)

// Markers put after sentence and clause ends before splitting, so that the
// splitter cuts there while the punctuation stays with the text before it;
// they are removed from the chunks. Both are Unicode separators no text
// field keeps (incoming ones become line breaks).
const (
	sentenceMark = "\u2029"
	clauseMark   = "\u2028"
)

// wordMark is put every wordRun characters into a longer run without a
// space, line break or mark, so that a word too long for a chunk is cut
// there; else the splitter cuts it into characters and measures each, a
// few calls per character of it. It is U+2063 INVISIBLE SEPARATOR;
// incoming ones are dropped, and it is removed from the chunks too.
const (
	wordMark = "\u2063"
	wordRun  = 64
)

// SplitText cuts text into chunks of at most about chunkSize, measured by
// count (runes when nil), preferring paragraph breaks, then line breaks,
// then ends of sentences (。！？；.!?; in Chinese and Western punctuation),
// then clauses (，、,：:), then spaces. Consecutive chunks share up to overlap
// of their text. It is langchaingo's recursive character splitter (see
// recursiveSplitter), taught where Chinese sentences end.
func SplitText(text string, chunkSize, overlap int, count func(string) int) ([]string, error) {
	return SplitTextWith(text, SplitOptions{ChunkSize: chunkSize, Overlap: overlap, Count: count})
}

// SplitOptions are SplitTextWith's settings.
type SplitOptions struct {
	ChunkSize int // at most about this, by Count; default 512
	Overlap   int // shared by consecutive chunks; at most half of ChunkSize
	// Separator, when set, cuts the text first, at every occurrence (it is
	// dropped): each piece between two is a chunk of its own, never merged
	// with its neighbours, and cut further (at ChunkSize, as SplitText
	// does) only when longer than MaxPiece. FastGPT's chunkSplitter.
	Separator string
	// MaxPiece bounds a piece between two Separators kept whole; default
	// ChunkSize.
	MaxPiece int
	// Whole, when positive, keeps a text of at most Whole as one chunk,
	// unsplit: FastGPT's chunkTriggerType minSize and maxSize.
	Whole int
	// Count measures a text; runes when nil.
	Count func(string) int
}

// SplitTextWith is SplitText with a custom separator and the trigger that
// keeps a short text whole.
func SplitTextWith(text string, o SplitOptions) ([]string, error) {
	if o.ChunkSize <= 0 {
		o.ChunkSize = 512
	}
	if o.Count == nil {
		o.Count = func(s string) int { return len([]rune(s)) }
	}
	if o.Whole > 0 {
		if t := strings.TrimSpace(text); t == "" {
			return nil, nil
		} else if o.Count(t) <= o.Whole {
			return []string{t}, nil
		}
	}
	if o.Separator == "" {
		return splitText(text, o.ChunkSize, o.Overlap, o.Count), nil
	}
	maxPiece := cmp.Or(max(o.MaxPiece, 0), o.ChunkSize)
	var chunks []string
	for piece := range strings.SplitSeq(text, o.Separator) {
		switch p := strings.TrimSpace(piece); {
		case p == "":
		case o.Count(p) <= maxPiece:
			chunks = append(chunks, p)
		default:
			chunks = append(chunks, splitText(p, o.ChunkSize, o.Overlap, o.Count)...)
		}
	}
	return chunks, nil
}

func splitText(text string, chunkSize, overlap int, count func(string) int) []string {
	overlap = max(0, min(overlap, chunkSize/2))
	text = strings.NewReplacer(sentenceMark, "\n", clauseMark, "\n", "\r\n", "\n", wordMark, "").Replace(text)
	text = strings.NewReplacer(
		"。", "。"+sentenceMark, "！", "！"+sentenceMark, "？", "？"+sentenceMark, "；", "；"+sentenceMark,
		". ", "."+sentenceMark+" ", "! ", "!"+sentenceMark+" ", "? ", "?"+sentenceMark+" ", "; ", ";"+sentenceMark+" ",
		"，", "，"+clauseMark, "、", "、"+clauseMark, "：", "："+clauseMark,
		", ", ","+clauseMark+" ", ": ", ":"+clauseMark+" ",
	).Replace(text)
	text = markLongWords(text)
	clean := strings.NewReplacer(sentenceMark, "", clauseMark, "", wordMark, "")
	measured := map[string]int{} // the splitter measures each piece several times over
	sp := recursiveSplitter{
		size:    chunkSize,
		overlap: overlap,
		length: func(s string) int {
			if n, ok := measured[s]; ok {
				return n
			}
			if len(measured) == 1<<16 {
				clear(measured)
			}
			n := s
			if strings.IndexByte(s, sentenceMark[0]) >= 0 { // all three marks start with this byte
				n = clean.Replace(s)
			}
			measured[s] = count(n)
			return measured[s]
		},
	}
	parts := sp.split(text, []string{"\n\n", "\n", sentenceMark, clauseMark, " ", wordMark, ""})
	chunks := parts[:0]
	var tail []string // punctuation for the last chunk, joined once: a text of punctuation has much
	glue := func() {
		if len(tail) > 0 {
			chunks[len(chunks)-1] += strings.Join(tail, "")
			tail = tail[:0]
		}
	}
	for _, p := range parts {
		p = strings.TrimSpace(clean.Replace(p))
		switch {
		case p == "":
		case len(chunks) > 0 && !strings.ContainsFunc(p, isWordRune):
			// Punctuation alone: the splitter cut a sentence just over
			// chunkSize before its final mark. The mark stays with its
			// sentence, a little over the size, rather than become a
			// chunk with nothing to search.
			tail = append(tail, p)
		default:
			glue()
			chunks = append(chunks, p)
		}
	}
	glue()
	return chunks
}

// markLongWords puts wordMark into every run of more than wordRun
// characters without a space, line break or mark, every wordRun of them.
func markLongWords(text string) string {
	var b strings.Builder
	run, from := 0, 0
	for i, r := range text {
		switch {
		case r == ' ' || r == '\n' || r == '\u2028' || r == '\u2029':
			run = 0
		case run == wordRun:
			b.WriteString(text[from:i])
			b.WriteString(wordMark)
			from, run = i, 1
		default:
			run++
		}
	}
	if from == 0 {
		return text
	}
	b.WriteString(text[from:])
	return b.String()
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }

// recursiveSplitter is langchaingo's recursive character splitter
// (textsplitter.RecursiveCharacter of v0.1.14, MIT licence, Copyright (c)
// Travis Cline), without the separators kept and without its warning on
// the standard logger: the package it lives in would bring langchaingo's
// llms, tiktoken-go and a markdown parser along.
type recursiveSplitter struct {
	size, overlap int
	length        func(string) int
}

// split cuts text at the first of separators it holds ("" cuts between
// characters), merges the pieces shorter than size into chunks, and cuts
// the longer ones again with the separators after it.
func (s recursiveSplitter) split(text string, separators []string) []string {
	var chunks []string
	sep, rest := separators[len(separators)-1], []string(nil)
	for i, c := range separators {
		if c == "" || strings.Contains(text, c) {
			sep, rest = c, separators[i+1:]
			break
		}
	}
	var good []string
	for _, piece := range strings.Split(text, sep) {
		if s.length(piece) < s.size {
			good = append(good, piece)
			continue
		}
		if len(good) > 0 {
			chunks = append(chunks, s.merge(good, sep)...)
			good = nil
		}
		if len(rest) == 0 {
			chunks = append(chunks, piece)
		} else {
			chunks = append(chunks, s.split(piece, rest)...)
		}
	}
	if len(good) > 0 {
		chunks = append(chunks, s.merge(good, sep)...)
	}
	return chunks
}

// merge joins consecutive pieces with sep into chunks of at most size,
// each starting with up to overlap of the end of the one before.
func (s recursiveSplitter) merge(pieces []string, sep string) []string {
	var (
		docs    []string
		current []string
		total   int
	)
	emit := func() {
		if doc := strings.TrimSpace(strings.Join(current, sep)); doc != "" {
			docs = append(docs, doc)
		}
	}
	sepLen := s.length(sep)
	for _, piece := range pieces {
		n := s.length(piece)
		withPiece := total + n
		if len(current) > 0 {
			withPiece += sepLen
		}
		if withPiece > s.size && len(current) > 0 {
			emit()
			// drop from the front until what is left may overlap the next chunk
			for len(current) > 0 {
				joined := 0
				if len(current) > 1 {
					joined = sepLen
				}
				if total <= s.overlap && (total+n+joined <= s.size || total <= 0) {
					break
				}
				total -= s.length(current[0])
				if len(current) > 1 {
					total -= sepLen
				}
				current = current[1:]
			}
		}
		current = append(current, piece)
		total += n
		if len(current) > 1 {
			total += sepLen
		}
	}
	emit()
	return docs
}
