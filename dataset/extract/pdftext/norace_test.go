//go:build !race

package pdftext_test

// raceEnabled: PDFium is compiled, as the server runs it.
const raceEnabled = false
