package billing

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// A journal is the append-only file a journaled BoltLedger writes records
// to before it acknowledges them. One write and one sync make a batch
// durable, where a bbolt commit writes and syncs a page of every bucket it
// touches and then the meta page: at one writer that is most of what a
// relayed chat costs. The records reach bbolt later, many per commit; the
// journal is emptied when nothing waits after an apply, and rewritten with
// only what waits once it has grown past maxJournalBytes.
//
// A frame is the payload's length (4 bytes, big-endian), its CRC-32C
// (4 bytes) and the payload, a Record in JSON. A frame that ends early or
// fails its checksum is a write a crash cut short: nothing after it was
// acknowledged, so reading stops there.
type journal struct {
	f    *os.File
	path string
	size int64 // where the next frame goes
}

const journalFrameHeader = 8

// maxJournalFrame bounds a frame's length, so that a garbled length does
// not make the reader allocate gigabytes; a record is far smaller (bbolt
// keys stop at 32 KiB).
const maxJournalFrame = 16 << 20

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// openJournal opens the journal at path, creating it if needed, and reads
// the records it holds, each with its JSON. bad counts the frames whose
// checksum held but whose record did not decode, left out; torn is the
// length of the tail a crash cut short, which the next write overwrites.
func openJournal(path string) (j *journal, recs []*journalRecord, bad int, torn int64, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, 0, 0, fmt.Errorf("billing: journal: %w", err)
	}
	// A new file's name is durable only once its directory is synced.
	if err := syncDir(filepath.Dir(path)); err != nil {
		_ = f.Close()
		return nil, nil, 0, 0, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		_ = f.Close()
		return nil, nil, 0, 0, fmt.Errorf("billing: journal: %w", err)
	}
	var off int64
	for int64(len(data))-off >= journalFrameHeader {
		n := int64(binary.BigEndian.Uint32(data[off:]))
		sum := binary.BigEndian.Uint32(data[off+4:])
		end := off + journalFrameHeader + n
		if n > maxJournalFrame || end > int64(len(data)) || crc32.Checksum(data[off+journalFrameHeader:end], crc32c) != sum {
			break
		}
		raw := data[off+journalFrameHeader : end : end]
		r := new(Record)
		if json.Unmarshal(raw, r) != nil || r.ID == "" {
			bad++
		} else {
			recs = append(recs, &journalRecord{r: r, raw: raw})
		}
		off = end
	}
	return &journal{f: f, path: path, size: off}, recs, bad, int64(len(data)) - off, nil
}

// appendFrame frames raw, a record's JSON, onto buf.
func appendFrame(buf, raw []byte) ([]byte, error) {
	if len(raw) > maxJournalFrame {
		return nil, fmt.Errorf("billing: a record of %d bytes is larger than the journal takes", len(raw))
	}
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(raw)))
	buf = binary.BigEndian.AppendUint32(buf, crc32.Checksum(raw, crc32c))
	return append(buf, raw...), nil
}

// write appends frames (appendFrame's output) and syncs them. On failure
// it cuts the file back to where it was, so that a record answered with an
// error does not come back at the next start.
func (j *journal) write(frames []byte) error {
	_, err := j.f.WriteAt(frames, j.size)
	if err == nil {
		err = j.f.Sync()
	}
	if err != nil {
		if terr := j.f.Truncate(j.size); terr != nil {
			return fmt.Errorf("billing: journal: %w (and cutting it back: %w)", err, terr)
		}
		return fmt.Errorf("billing: journal: %w", err)
	}
	j.size += int64(len(frames))
	return nil
}

// reset leaves the journal holding only keep: the records not yet in
// bbolt. Emptying it is safe to do in place, since everything it held is
// in bbolt; keeping some is done in a new file renamed over the old one,
// so that a crash halfway leaves one or the other whole.
func (j *journal) reset(keep []*journalRecord) error {
	if len(keep) == 0 {
		if err := j.f.Truncate(0); err != nil {
			return fmt.Errorf("billing: journal: %w", err)
		}
		j.size = 0
		return nil
	}
	var frames []byte
	for _, p := range keep {
		var err error
		if frames, err = appendFrame(frames, p.raw); err != nil {
			return err
		}
	}
	tmp := j.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("billing: journal: %w", err)
	}
	if _, err = f.Write(frames); err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = os.Rename(tmp, j.path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(j.path))
	}
	if err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("billing: journal: %w", err)
	}
	_ = j.f.Close()
	j.f, j.size = f, int64(len(frames))
	return nil
}

func (j *journal) close() error { return j.f.Close() }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("billing: journal directory: %w", err)
	}
	err = d.Sync()
	// Some file systems cannot sync a directory; the file's own sync is
	// then all there is.
	if errors.Is(err, os.ErrInvalid) {
		err = nil
	}
	return errors.Join(err, d.Close())
}
