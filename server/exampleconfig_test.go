package server_test

import (
	"io"
	"os"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/chatgate/chatgate/server"
)

// exampleConfig is the file shipped beside the binary, which claims to
// show every field.
const exampleConfig = "../examples/server/chatgate.example.yaml"

// Every field the config file can hold appears in the example file, so
// the example is the complete reference it says it is: a field added to
// Config without an example line fails here.
func TestExampleConfigHasEveryField(t *testing.T) {
	raw, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil || len(doc.Content) == 0 {
		t.Fatalf("parse %s: %v", exampleConfig, err)
	}
	var missing []string
	walkConfig(reflect.TypeFor[server.Config](), []*yaml.Node{doc.Content[0]}, "", &missing)
	for _, m := range missing {
		if aliases[m] {
			continue
		}
		t.Errorf("%s lacks %s", exampleConfig, m)
	}
}

// aliases are other spellings of a field the example shows; the example
// names them in a comment.
var aliases = map[string]bool{"dataset.qaModel": true}

// walkConfig checks that every yaml field of t is set in at least one of
// nodes (the values that field's parent has in the file: several for the
// elements of a list or the entries of a map), and recurses.
func walkConfig(t reflect.Type, nodes []*yaml.Node, path string, missing *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[yaml.Unmarshaler]()) && t.Kind() != reflect.Struct {
		return // a scalar with its own syntax, such as Duration
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map:
		var elems []*yaml.Node
		for _, n := range nodes {
			switch {
			case n.Kind == yaml.SequenceNode:
				elems = append(elems, n.Content...)
			case n.Kind == yaml.MappingNode:
				for i := 1; i < len(n.Content); i += 2 {
					elems = append(elems, n.Content[i])
				}
			}
		}
		elem := t.Elem()
		for elem.Kind() == reflect.Pointer {
			elem = elem.Elem()
		}
		if elem.Kind() != reflect.Struct && elem.Kind() != reflect.Slice && elem.Kind() != reflect.Map {
			return // a list or map of scalars: present is enough
		}
		if len(elems) == 0 {
			*missing = append(*missing, path+": an example entry")
			return
		}
		walkConfig(elem, elems, path+"[]", missing)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			var values []*yaml.Node
			for _, n := range nodes {
				if n.Kind != yaml.MappingNode {
					continue
				}
				for j := 0; j+1 < len(n.Content); j += 2 {
					if n.Content[j].Value == name {
						values = append(values, n.Content[j+1])
					}
				}
			}
			p := strings.TrimPrefix(path+"."+name, ".")
			if len(values) == 0 {
				*missing = append(*missing, p)
				continue
			}
			walkConfig(f.Type, values, p, missing)
		}
	}
}

// The complete example starts a server as written (its models and
// embedders are only dialled when used, so nothing here needs them).
func TestExampleConfigStartsAServer(t *testing.T) {
	cfg, err := server.LoadConfig(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.Data = t.TempDir()
	cfg.Stderr = io.Discard
	s, err := server.New(cfg)
	if err != nil {
		t.Fatalf("server.New with %s: %v", exampleConfig, err)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
}
