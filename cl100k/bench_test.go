package cl100k

import (
	"strings"
	"syscall"
	"testing"
)

// cpuTime is the process's user and system CPU time so far, in ns: on a
// shared machine it moves less with the load than wall time does.
func cpuTime(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func benchCount(b *testing.B, count func(string) int, text string) {
	b.SetBytes(int64(len(text)))
	start := cpuTime(b)
	for b.Loop() {
		count(text)
	}
	b.ReportMetric(float64(cpuTime(b)-start)/1e6/float64(b.N), "cpu-ms/op")
}

// BenchmarkCount counts 128 KiB of each kind: ordinary English, and the
// one-piece runs that were quadratic (a word of random letters, CJK
// without punctuation, spaces, a line of "=").
func BenchmarkCount(b *testing.B) {
	t := &testing.T{}
	runs := longRuns(t, 128<<10)
	english := strings.Repeat("The quick brown fox jumps over the lazy dog; it's 12345 times, isn't it?\n", 1800)[:128<<10]
	var c Counter
	if err := c.Warm(); err != nil {
		b.Fatal(err)
	}
	b.Run("english", func(b *testing.B) { benchCount(b, c.Count, english) })
	for _, kind := range []string{"random", "CJK", "spaces", "equals"} {
		b.Run(kind, func(b *testing.B) { benchCount(b, c.Count, runs[kind]) })
	}
}

// BenchmarkTiktoken is tiktoken-go's encoder on the same English text,
// for the ratio (its one-piece runs take seconds: see BENCHMARKS.md).
func BenchmarkTiktoken(b *testing.B) {
	var c Counter
	enc := tiktokenOf(b, &c)
	english := strings.Repeat("The quick brown fox jumps over the lazy dog; it's 12345 times, isn't it?\n", 1800)[:128<<10]
	b.Run("english", func(b *testing.B) { benchCount(b, func(s string) int { return len(enc.EncodeOrdinary(s)) }, english) })
}
