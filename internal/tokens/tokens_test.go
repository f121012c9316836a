package tokens

import "testing"

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
