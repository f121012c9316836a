package dataset

import (
	"context"
	"regexp"
	"strings"
)

// Generator is what QA-mode training needs of a language model: a prompt in,
// text and its token counts out. The server adapts a chat model to it.
type Generator interface {
	Generate(ctx context.Context, prompt string) (GenerateResult, error)
}

// GeneratorFunc adapts a function to a Generator.
type GeneratorFunc func(ctx context.Context, prompt string) (GenerateResult, error)

// Generate calls f.
func (f GeneratorFunc) Generate(ctx context.Context, prompt string) (GenerateResult, error) {
	return f(ctx, prompt)
}

// GenerateResult is a Generator's answer.
type GenerateResult struct {
	Text             string
	Model            string
	PromptTokens     int
	CompletionTokens int
}

// DefaultQATheme fills {{theme}} when pushData gives no prompt.
const DefaultQATheme = "它们可能包含多个主题内容"

// DefaultQAPrompt is FastGPT's QA split prompt: {{theme}} names the
// subject, {{text}} is the pushed text.
const DefaultQAPrompt = `我会给你一段文本,{{theme}},学习它们,并整理学习成果,要求为:
1. 提出最多 25 个问题。
2. 给出每个问题的答案。
3. 答案要详细完整,答案可以包含普通文字、链接、代码、表格、公示、媒体链接等 markdown 元素。
4. 按格式返回多个问题和答案:

Q1: 问题。
A1: 答案。
Q2:
A2:
……

我的文本:"""{{text}}"""`

// MaxQAPairs is how many pairs one QA item may yield; more are dropped.
const MaxQAPairs = 25

// qaPrompt builds the prompt for text. A pushData prompt that holds
// {{text}} is a whole template; any other prompt is the theme.
func qaPrompt(custom, text string) string {
	tmpl, theme := DefaultQAPrompt, DefaultQATheme
	switch {
	case strings.Contains(custom, "{{text}}"):
		tmpl = custom
	case strings.TrimSpace(custom) != "":
		theme = strings.TrimSpace(custom)
	}
	return strings.NewReplacer("{{theme}}", theme, "{{text}}", text).Replace(tmpl)
}

// QAPair is one question and its answer.
type QAPair struct{ Q, A string }

// qaMarker finds "Q1:", "A 12：", "**Q3.**" and the like at a line start.
var qaMarker = regexp.MustCompile(`(?m)^[ \t>*#-]*\**\s*([QqAa])\s*(\d{1,3})\s*\**\s*[:：.、)]\s*\**`)

// ParseQA reads the pairs a model wrote as Q1:/A1: lines, tolerating
// full-width colons, markdown emphasis, blank lines and answers that run
// over several lines. A question without an answer, or the reverse, is
// dropped; at most MaxQAPairs pairs are returned.
func ParseQA(text string) []QAPair {
	locs := qaMarker.FindAllStringSubmatchIndex(text, -1)
	type part struct {
		kind byte
		num  string
		body string
	}
	parts := make([]part, 0, len(locs))
	for i, l := range locs {
		end := len(text)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		parts = append(parts, part{
			kind: strings.ToUpper(text[l[2]:l[3]])[0],
			num:  text[l[4]:l[5]],
			body: strings.TrimSpace(text[l[1]:end]),
		})
	}
	var out []QAPair
	for i := 0; i+1 < len(parts) && len(out) < MaxQAPairs; i++ {
		q, a := parts[i], parts[i+1]
		if q.kind == 'Q' && a.kind == 'A' && q.num == a.num && q.body != "" && a.body != "" {
			out = append(out, QAPair{Q: q.body, A: a.body})
			i++
		}
	}
	return out
}
