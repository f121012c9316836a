//go:build race

package server_test

// raceEnabled: PDFium runs interpreted, compiling it under the race
// detector takes more than a minute.
const raceEnabled = true
