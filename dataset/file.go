package dataset

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/internal/httpjson"
)

// FileExtractor reads the text of an uploaded file, for
// collection/create/localFile. dataset/extract's Extractor implements it;
// it lives apart so that a program importing dataset links no file
// format's library.
type FileExtractor interface {
	// Extract returns the text of the file named name, of the content
	// type its form part declared (often application/octet-stream), read
	// from r. A file at fault (an unsupported type, a corrupt or binary
	// file) answers an API error with a 4xx status, which the route
	// answers as it is; any other error answers 500. Empty text is not an
	// error: the route refuses it.
	Extract(ctx context.Context, name, contentType string, r io.Reader) (string, error)
}

// DefaultMaxFileBytes is the largest file localFile takes when
// HandlerOptions.MaxFileBytes is not set.
const DefaultMaxFileBytes = 20 << 20

// fileCollectionBody is the data field of POST
// /api/core/dataset/collection/create/localFile: a text collection's
// settings, without the text, which is the file's. name is the file's
// name unless given.
type fileCollectionBody struct {
	textCollectionBody
	// Text shadows the text collection's: a text beside the file is
	// refused rather than one of them silently dropped.
	Text json.RawMessage `json:"text"`
}

func (b *fileCollectionBody) check() error {
	if given(b.Text) {
		return apierror.InvalidRequest("text", "is not taken by localFile: the collection's text is the file's; send a text to collection/create/text")
	}
	return b.textCollectionBody.check()
}

// upload is what a localFile form carried.
type upload struct {
	name, contentType string
	file              []byte
	data              []byte
}

// multipartSlack is what a localFile form may hold beyond its file and
// data: part headers and boundaries.
const multipartSlack = 64 << 10

// createLocalFile serves POST /api/core/dataset/collection/create/localFile,
// a multipart form of a file and data, the JSON of the collection's
// settings (FastGPT's curl: --form 'file=@"index.html"' --form
// 'data="{...}"'); data is {collectionId, results} as
// collection/create/text answers. The file's text is extracted and split
// as a text's is; the collection is of type "file", named after the file.
// Everything is checked before anything is stored, so a refusal leaves
// nothing behind.
func (h *Handler) createLocalFile(w http.ResponseWriter, r *http.Request, p *auth.Principal) (map[string]any, error) {
	up, err := h.readUpload(w, r)
	if err != nil {
		return nil, err
	}
	var b fileCollectionBody
	if err := decodeData(up.data, &b); err != nil {
		return nil, err
	}
	if err := b.check(); err != nil {
		return nil, err
	}
	ctx := r.Context()
	// The dataset first: a missing one answers 404 before a file is read.
	if _, err := h.s.Dataset(ctx, p.TeamID, b.DatasetID); err != nil {
		return nil, err
	}
	if h.files == nil {
		return nil, ErrFileImportUnavailable
	}
	text, err := h.files.Extract(ctx, up.name, up.contentType, bytes.NewReader(up.file))
	if err != nil {
		var ae httpjson.APIError
		if errors.As(err, &ae) && ae.HTTPStatus() < 500 {
			return nil, err
		}
		return nil, fmt.Errorf("dataset: extracting the text of %q: %w", up.name, err)
	}
	if strings.TrimSpace(text) == "" {
		return nil, apierror.InvalidRequest("file", "%q holds no text", up.name)
	}
	if len(text) > MaxTextBytes {
		return nil, apierror.InvalidRequest("file", "%q holds %d bytes of text, more than the %d a collection takes", up.name, len(text), MaxTextBytes)
	}
	// the chunk settings, tags and bill of create/text, then the file's text
	tc := b.textCollection(p.TeamID, p.KeyID)
	tc.Name, tc.Text, tc.Type = cmp.Or(strings.TrimSpace(b.Name), up.name), text, CollectionFile
	c, res, err := h.s.CreateTextCollection(ctx, tc)
	if err != nil {
		return nil, err
	}
	return map[string]any{"collectionId": c.ID, "results": res}, nil
}

// readUpload reads a localFile form: one file part and one data part,
// nothing else, the file at most maxFile bytes, counted as it arrives.
func (h *Handler) readUpload(w http.ResponseWriter, r *http.Request) (*upload, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return nil, apierror.InvalidRequest("", "the body must be multipart/form-data with a file field and a data field (JSON), as FastGPT's localFile takes")
	}
	r.Body = http.MaxBytesReader(w, r.Body, h.maxFile+h.maxBody+multipartSlack)
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, apierror.InvalidRequest("", "the body is not a valid multipart form: %v", err)
	}
	var up upload
	var haveFile, haveData bool
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, h.formError(err)
		}
		switch name := part.FormName(); name {
		case "file":
			if haveFile {
				return nil, apierror.InvalidRequest("file", "is given twice; send one file")
			}
			haveFile = true
			up.name = fileName(part)
			if up.name == "" {
				return nil, apierror.InvalidRequest("file", "must be a file: its part has no filename, which names the collection and tells the file's type")
			}
			up.contentType = part.Header.Get("Content-Type")
			if up.file, err = readPart(part, h.maxFile); err != nil {
				return nil, h.formError(err)
			}
		case "data":
			if haveData {
				return nil, apierror.InvalidRequest("data", "is given twice")
			}
			haveData = true
			if up.data, err = readPart(part, h.maxBody); err != nil {
				if errors.Is(err, errPartTooLarge) {
					return nil, apierror.InvalidRequest("data", "is larger than %d bytes", h.maxBody)
				}
				return nil, h.formError(err)
			}
		case "":
			return nil, apierror.InvalidRequest("", "a part of the form has no name; send file and data")
		default:
			return nil, apierror.InvalidRequest(name, "unknown field; localFile takes file and data")
		}
	}
	switch {
	case !haveFile:
		return nil, apierror.InvalidRequest("file", "is required: the file to import (txt, md, html, csv, docx or pdf)")
	case !haveData:
		return nil, apierror.InvalidRequest("data", `is required: the collection's settings as JSON, e.g. {"datasetId":"...","trainingType":"chunk"}`)
	}
	return &up, nil
}

var errPartTooLarge = errors.New("part too large")

// readPart reads a form part of at most max bytes.
func readPart(part *multipart.Part, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(part, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, errPartTooLarge
	}
	return b, nil
}

// formError is the answer to a form that could not be read: too large
// (the part, or the whole body), cut short, or not multipart.
func (h *Handler) formError(err error) error {
	var mbe *http.MaxBytesError
	if errors.Is(err, errPartTooLarge) || errors.As(err, &mbe) {
		return apierror.InvalidRequest("file", "is larger than the %d bytes a file may have (dataset.max_file_bytes)", h.maxFile)
	}
	var bte *httpjson.BodyTimeoutError
	if errors.As(httpjson.DecodeErr(err), &bte) { // the server's body read deadline
		return bte
	}
	return apierror.InvalidRequest("", "the body is not a valid multipart form: %v", err)
}

// fileName is the file part's name: FastGPT's document asks clients to
// percent-encode names that are not ASCII, so one that decodes to UTF-8
// is decoded; RFC 2231's filename* is decoded by mime.
func fileName(part *multipart.Part) string {
	name := strings.TrimSpace(part.FileName())
	// A client on Windows may send its whole path; the name is its end.
	name = name[strings.LastIndexByte(name, '\\')+1:]
	if strings.Contains(name, "%") {
		if dec, err := url.PathUnescape(name); err == nil && utf8.ValidString(dec) && !strings.ContainsAny(dec, "/\\\x00") {
			name = dec
		}
	}
	if name == "." || name == "/" {
		return ""
	}
	return name
}

// decodeData decodes the data field, strictly, naming fields as data.x.
// A data that is a JSON string holding the JSON (a client that encoded
// it twice) is read too.
func decodeData(raw []byte, b *fileCollectionBody) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return apierror.InvalidRequest("data", `is empty: send the collection's settings as JSON, e.g. {"datasetId":"...","trainingType":"chunk"}`)
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			raw = []byte(s)
		}
	}
	err := httpjson.DecodeBytes(raw, b)
	var de *httpjson.DecodeError
	if errors.As(err, &de) {
		f := "data"
		if de.Field != "" {
			// encoding/json names a field of the embedded body by its path.
			f += "." + strings.TrimPrefix(de.Field, "textCollectionBody.")
		}
		reason := de.Reason
		if reason == "body is empty" || strings.HasPrefix(reason, "malformed") || strings.HasPrefix(reason, "body ") {
			reason = "must be a JSON object of the collection's settings: " + reason
		}
		return apierror.InvalidRequest(f, "%s", reason)
	}
	return err
}
