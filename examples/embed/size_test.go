package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// heavy are modules a program that mounts only auth and chat, with its own
// model, must not link: each belongs to a package it did not import.
var heavy = []string{
	"github.com/tmc/langchaingo",         // chat/llm, dataset/embedding
	"github.com/pkoukk/tiktoken-go",      // cl100k's tables
	"github.com/blevesearch/",            // dataset/fulltext
	"github.com/philippgille/chromem-go", // dataset/chromemstore
	"github.com/jackc/pgx",
	"github.com/redis/go-redis",
	"github.com/prometheus/",
	"github.com/chatgate/chatgate/dataset",
	"github.com/chatgate/chatgate/billing",
	"github.com/chatgate/chatgate/shareauth",
	"github.com/chatgate/chatgate/cl100k",
}

// This program mounts auth and chat and nothing else; it must link no more
// than that, and its binary must stay within 3 MiB of an empty net/http
// server's (BENCHMARKS.md has the figures).
func TestLinksOnlyAuthAndChat(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two programs")
	}
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, h := range heavy {
			if strings.HasPrefix(dep, h) {
				t.Errorf("links %s", dep)
			}
		}
	}
	dir := t.TempDir()
	size := func(name, pkg string) int64 {
		bin := filepath.Join(dir, name)
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
		fi, err := os.Stat(bin)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	embed, empty := size("embed", "."), size("emptyhttp", "./testdata/emptyhttp")
	t.Logf("examples/embed: %d bytes; empty net/http server: %d bytes; difference %.2f MiB", embed, empty, float64(embed-empty)/(1<<20))
	if embed-empty > 3<<20 {
		t.Errorf("examples/embed is %.2f MiB larger than an empty net/http server; the budget is 3 MiB", float64(embed-empty)/(1<<20))
	}
}
