package dataset

import (
	"slices"
	"strings"
	"testing"
)

// A model's list of queries is read however it is wrapped; anything that
// is not a JSON list of strings is refused, so the search falls back to
// the question alone.
func TestParseExtension(t *testing.T) {
	for _, tc := range []struct {
		name, answer string
		want         []string
		ok           bool
	}{
		{"plain", `["Who directed Hero?","Hero director"]`, []string{"Who directed Hero?", "Hero director"}, true},
		{"code fence", "```json\n[\"《英雄》的导演是谁？\", \"英雄 导演\"]\n```", []string{"《英雄》的导演是谁？", "英雄 导演"}, true},
		{"bare fence", "```\n[\"a\"]\n```", []string{"a"}, true},
		{"prose around", "Sure! Here are the queries:\n[\"a b\", \"c\"]\nHope this helps.", []string{"a b", "c"}, true},
		{"brackets in the prose", "[Note] the queries: [\"a\"] [done]", []string{"a"}, true},
		{"escaped quotes", `[\"a\", \"b\"]`, []string{"a", "b"}, true},
		{"blank and padded items", `["  a  ", "", "   "]`, []string{"a"}, true},
		{"empty list", `[]`, []string{}, true},
		{"no list", "I cannot help with that.", nil, false},
		{"not strings", `[1, 2]`, nil, false},
		{"objects", `[{"query":"a"}]`, nil, false},
		{"cut off", `["a", "b`, nil, false},
		{"brackets reversed", `] and [`, nil, false},
		{"empty answer", "", nil, false},
	} {
		got, ok := parseExtension(tc.answer)
		if ok != tc.ok || (ok && !slices.Equal(got, tc.want)) {
			t.Errorf("%s: parseExtension(%q) = %q, %v; want %q, %v", tc.name, tc.answer, got, ok, tc.want, tc.ok)
		}
	}
}

// The prompt carries the question and the background, and asks for the
// JSON list the parser reads.
func TestExtensionPrompt(t *testing.T) {
	p := ExtensionPrompt("  导演是谁 ", "a film club's notes about Hero (2002)")
	for _, want := range []string{"导演是谁", "a film club's notes about Hero (2002)", "JSON array of strings", "at most 3"} {
		if !strings.Contains(p, want) {
			t.Errorf("prompt lacks %q:\n%s", want, p)
		}
	}
}

func TestClip(t *testing.T) {
	if got := clip("短文本", 100); got != "短文本" {
		t.Errorf("clip of a short text: %q", got)
	}
	if got := clip("导演是谁", 4); got != "导…" { // 4 bytes cut inside 演: back to 导
		t.Errorf("clip(导演是谁, 4) = %q", got)
	}
}
