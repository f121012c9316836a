package extract

import (
	"bytes"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
	"golang.org/x/net/html/charset"
)

// HTMLText returns the text of an html file: what a reader sees, without
// scripts, styles, forms' hidden parts or markup. Block elements start
// lines, headings keep their level as Markdown's #, list items start with
// "- ", table cells are parted by " | ", and pre keeps its spacing. The
// charset is the document's own (its meta tag or byte-order mark),
// UTF-8 when it names none.
func HTMLText(name string, b []byte) (string, error) {
	if bytes.IndexByte(b, 0) >= 0 {
		return "", Invalid(name, "is not HTML: it holds binary data")
	}
	r, err := charset.NewReader(bytes.NewReader(b), "text/html")
	if err != nil {
		return "", Invalid(name, "is not HTML in a known charset: %v", err)
	}
	doc, err := html.Parse(r)
	if err != nil {
		return "", Invalid(name, "is not valid HTML: %v", err)
	}
	var w htmlWriter
	w.walk(doc)
	return w.String(), nil
}

// htmlWriter gathers a document's text, a line per block.
type htmlWriter struct {
	strings.Builder
	pre    int  // depth of pre elements around the current node
	spaced bool // the last thing written was a space or a line's start
}

// skipped reports whether an element holds no text a reader sees.
func skipped(a atom.Atom) bool {
	switch a {
	case atom.Script, atom.Style, atom.Noscript, atom.Template, atom.Head, atom.Svg, atom.Math,
		atom.Iframe, atom.Object, atom.Canvas, atom.Select, atom.Button:
		return true
	}
	return false
}

// block reports whether an element starts and ends a line.
func block(a atom.Atom) bool {
	switch a {
	case atom.P, atom.Div, atom.Section, atom.Article, atom.Main, atom.Header, atom.Footer, atom.Nav,
		atom.Aside, atom.Blockquote, atom.Ul, atom.Ol, atom.Dl, atom.Dt, atom.Dd, atom.Table, atom.Tr,
		atom.Pre, atom.Figure, atom.Figcaption, atom.Form, atom.Fieldset, atom.Address, atom.Hr,
		atom.Details, atom.Summary, atom.Title, atom.Body, atom.Html, atom.Li:
		return true
	}
	return heading(a) > 0
}

// heading is the level of a heading element, 0 for any other.
func heading(a atom.Atom) int {
	switch a {
	case atom.H1:
		return 1
	case atom.H2:
		return 2
	case atom.H3:
		return 3
	case atom.H4:
		return 4
	case atom.H5:
		return 5
	case atom.H6:
		return 6
	}
	return 0
}

func (w *htmlWriter) walk(n *html.Node) {
	switch n.Type {
	case html.TextNode:
		w.text(n.Data)
		return
	case html.ElementNode:
	case html.DocumentNode:
		w.children(n)
		return
	default:
		return
	}
	if skipped(n.DataAtom) || hidden(n) {
		return
	}
	switch n.DataAtom {
	case atom.Br:
		w.newline()
		return
	case atom.Td, atom.Th:
		if n.PrevSibling != nil && w.Len() > 0 && !w.atLineStart() {
			w.WriteString(" | ")
			w.spaced = true
		}
		w.children(n)
		return
	case atom.Img:
		if alt := strings.TrimSpace(attr(n, "alt")); alt != "" {
			w.text(alt)
		}
		return
	}
	if !block(n.DataAtom) {
		w.children(n)
		return
	}
	w.newline()
	if level := heading(n.DataAtom); level > 0 {
		w.WriteString(strings.Repeat("#", level) + " ")
		w.spaced = true
	}
	if n.DataAtom == atom.Li {
		w.WriteString("- ")
		w.spaced = true
	}
	if n.DataAtom == atom.Pre {
		w.pre++
		defer func() { w.pre-- }()
	}
	w.children(n)
	w.newline()
}

func (w *htmlWriter) children(n *html.Node) {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		w.walk(c)
	}
}

// text writes s, its runs of white space as one space outside pre.
func (w *htmlWriter) text(s string) {
	if w.pre > 0 {
		w.WriteString(s)
		w.spaced = strings.HasSuffix(s, "\n") || strings.HasSuffix(s, " ")
		return
	}
	for i, f := range strings.Fields(s) {
		if (i > 0 || startsSpace(s)) && !w.spaced {
			w.WriteByte(' ')
		}
		w.WriteString(f)
		w.spaced = false
	}
	if endsSpace(s) && !w.spaced && w.Len() > 0 {
		w.WriteByte(' ')
		w.spaced = true
	}
}

func (w *htmlWriter) atLineStart() bool {
	s := w.String()
	return s == "" || strings.HasSuffix(s, "\n")
}

// newline ends the current line unless it is empty.
func (w *htmlWriter) newline() {
	if !w.atLineStart() {
		w.WriteByte('\n')
	}
	w.spaced = true
}

func startsSpace(s string) bool { return s != "" && strings.TrimLeft(s, " \t\n\r\f") != s }
func endsSpace(s string) bool   { return s != "" && strings.TrimRight(s, " \t\n\r\f") != s }

// hidden reports whether an element is hidden from readers by its
// attributes.
func hidden(n *html.Node) bool {
	for _, a := range n.Attr {
		switch strings.ToLower(a.Key) {
		case "hidden":
			return true
		case "aria-hidden":
			if strings.EqualFold(a.Val, "true") {
				return true
			}
		case "type":
			if n.DataAtom == atom.Input && strings.EqualFold(a.Val, "hidden") {
				return true
			}
		}
	}
	return false
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}
