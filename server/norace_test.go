//go:build !race

package server_test

// raceEnabled: PDFium is compiled, as the server runs it.
const raceEnabled = false
