// Package extract turns uploaded files into the plain text a knowledge-base
// collection is split from: txt and md as they are, html without its
// markup, csv as one block of "header: value" lines a row, docx as its
// paragraphs, and pdf through a PDFReader (dataset/extract/pdftext's, which
// links a WebAssembly build of PDFium, so it is kept apart: a program that
// never reads PDFs does not link it).
//
// A file at fault (a type not supported, a corrupt archive, a binary file
// named .txt) is answered with an error derived from ErrUnsupported or
// ErrInvalid: FastGPT's envelope shows it as a 400 naming the file. Any
// other error is the extractor's own failure.
package extract
