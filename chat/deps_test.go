package chat_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The core links nothing heavy: a program that imports auth and chat with
// its own Model links no provider client, no BPE tables, no full-text or
// vector index. Providers are chat/llm's; counting as OpenAI does is
// package cl100k's.
func TestCoreLinksNothingHeavy(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/chatgate/chatgate/auth", "github.com/chatgate/chatgate/chat").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, heavy := range []string{"github.com/tmc/langchaingo", "github.com/pkoukk/", "github.com/blevesearch/",
			"github.com/philippgille/chromem-go", "github.com/chatgate/chatgate/cl100k", "github.com/chatgate/chatgate/chat/llm"} {
			if strings.HasPrefix(pkg, heavy) {
				t.Errorf("auth+chat links %s", pkg)
			}
		}
	}
}
