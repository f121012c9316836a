package webpage_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The HTML parsers are this package's: a program importing dataset (or
// shareauth, which shares the outbound guard) links none of them.
func TestDatasetLinksNoHTMLParser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	for _, pkg := range []string{"github.com/chatgate/chatgate/dataset", "github.com/chatgate/chatgate/shareauth"} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, h := range []string{"github.com/PuerkitoBio/goquery", "codeberg.org/readeck/", "github.com/andybalholm/cascadia", "golang.org/x/net/html"} {
				if strings.HasPrefix(dep, h) {
					t.Errorf("%s links %s", pkg, dep)
				}
			}
		}
	}
}
