// Package htmlq finds elements in parsed HTML and reads them, for the tests
// of the pages: by data-testid or any predicate, their attributes, their
// text.
package htmlq

import (
	"slices"
	"strings"

	"golang.org/x/net/html"
)

// Find returns the elements under n, n included, that match, in document
// order.
func Find(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && match(d) {
			out = append(out, d)
		}
	}
	return out
}

// ByTestID returns the elements under n with data-testid="id".
func ByTestID(n *html.Node, id string) []*html.Node {
	return Find(n, func(d *html.Node) bool { return Attr(d, "data-testid") == id })
}

// Attr returns the value of n's attribute name, or "" without one.
func Attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// Has reports whether n has the attribute name, such as "hidden".
func Has(n *html.Node, name string) bool {
	return slices.ContainsFunc(n.Attr, func(a html.Attribute) bool { return a.Key == name })
}

// Text returns the text under n as a reader sees it: runs of white space
// are one space, and none leads or trails.
func Text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}
