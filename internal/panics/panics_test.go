package panics_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/internal/panics"
)

func TestCatch(t *testing.T) {
	if err := panics.Catch(func() error { return io.EOF }); err != io.EOF {
		t.Fatalf("plain error: got %v, want io.EOF", err)
	}
	if err := panics.Catch(func() error { return nil }); err != nil {
		t.Fatalf("no error: got %v", err)
	}
	err := panics.Catch(func() error { panic("boom") })
	var pe *panics.Error
	if !errors.As(err, &pe) || pe.Value != "boom" || err.Error() != "panic: boom" {
		t.Fatalf("panic: got %#v", err)
	}
	if !strings.Contains(string(pe.Stack), "panics_test.go") {
		t.Errorf("stack does not show where it panicked:\n%s", pe.Stack)
	}
	err = panics.Catch(func() error { panic(io.ErrUnexpectedEOF) })
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a panicked error is not seen through: %v", err)
	}
	var nilMap map[string]int
	err = panics.Catch(func() error { nilMap["x"] = 1; return nil })
	if !errors.As(err, &pe) {
		t.Errorf("runtime panic not caught: %v", err)
	}
}
