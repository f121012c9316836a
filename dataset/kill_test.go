package dataset_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/dataset"
)

const (
	killEnvDir   = "CHATGATE_KILL_DIR"
	killEnvMode  = "CHATGATE_KILL_MODE"
	killEnvRound = "CHATGATE_KILL_ROUND"
)

// openKillService opens the service on dir as the reference server does:
// a bbolt store and an on-disk bleve index.
func openKillService(dir string) (*dataset.Service, *bbolt.DB, *dataset.BleveIndex, error) {
	db, err := bbolt.Open(filepath.Join(dir, "chatgate.db"), 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := dataset.NewBoltStore(db)
	if err != nil {
		return nil, nil, nil, err
	}
	text, err := dataset.OpenBleveIndex(filepath.Join(dir, "fulltext.bleve"))
	if err != nil {
		return nil, nil, nil, err
	}
	s, err := dataset.New(context.Background(), dataset.Options{Store: st, Text: text, BatchSize: 16, Workers: 2,
		PollEvery: 10 * time.Millisecond, RetryBase: 10 * time.Millisecond})
	return s, db, text, err
}

// TestKillChild is the child process of TestKillAnyMoment; it does nothing
// in a normal run.
func TestKillChild(t *testing.T) {
	dir := os.Getenv(killEnvDir)
	if dir == "" {
		t.Skip("child of TestKillAnyMoment")
	}
	ctx := context.Background()
	s, _, _, err := openKillService(dir)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := os.ReadFile(filepath.Join(dir, "ids"))
	if err != nil {
		t.Fatal(err)
	}
	team, collID := "team", strings.Fields(string(ids))[1]
	if os.Getenv(killEnvMode) == "drain" {
		for {
			c, err := s.Collection(ctx, team, collID)
			if err != nil {
				t.Fatal(err)
			}
			if c.TrainingAmount == 0 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
		fmt.Println("DRAINED")
		return
	}
	round := os.Getenv(killEnvRound)
	out := bufio.NewWriter(os.Stdout)
	for b := 0; ; b++ {
		items := make([]dataset.PushItem, 20)
		for i := range items {
			items[i] = dataset.PushItem{Q: fmt.Sprintf("round %s batch %d item %d about topic %d", round, b, i, (b*20+i)%97), A: "answer"}
		}
		res, err := s.Push(ctx, dataset.PushRequest{TeamID: team, CollectionID: collID, Data: items})
		if err != nil {
			t.Fatal(err)
		}
		if res.InsertLen != len(items) {
			t.Fatalf("push: %+v", res)
		}
		for _, it := range items {
			fmt.Fprintf(out, "ACK %s\n", it.Q)
		}
		out.Flush()
	}
}

// TestKillAnyMoment kills a process that pushes and trains at random
// moments with SIGKILL, restarts it, and checks that every acknowledged
// item ended as exactly one data item (or a recorded failure), with one
// vector each, found by both searches.
func TestKillAnyMoment(t *testing.T) {
	if testing.Short() {
		t.Skip("runs subprocesses")
	}
	dir := t.TempDir()
	ctx := context.Background()
	{ // the dataset and collection the children use
		s, db, text, err := openKillService(dir)
		if err != nil {
			t.Fatal(err)
		}
		ds, _ := s.CreateDataset(ctx, "team", "kill", "")
		c, err := s.CreateCollection(ctx, "team", ds.ID, "kill")
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Close(ctx)
		_ = text.Close()
		_ = db.Close()
		if err := os.WriteFile(filepath.Join(dir, "ids"), []byte(ds.ID+" "+c.ID), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	child := func(mode string, round int) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$")
		cmd.Env = append(os.Environ(), killEnvDir+"="+dir, killEnvMode+"="+mode, fmt.Sprintf("%s=%d", killEnvRound, round))
		return cmd
	}
	acked := map[string]bool{}
	for round := range 5 {
		cmd := child("push", round)
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// wait for the first acknowledgement, then kill at a random moment
		timeout := time.After(60 * time.Second)
	waitAck:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("child exited before acknowledging anything")
				}
				if q, ok := strings.CutPrefix(l, "ACK "); ok {
					acked[q] = true
					break waitAck
				}
			case <-timeout:
				t.Fatal("child acknowledged nothing")
			}
		}
		time.Sleep(time.Duration(50+rng.IntN(350)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		for l := range lines {
			if q, ok := strings.CutPrefix(l, "ACK "); ok {
				acked[q] = true
			}
		}
		_ = cmd.Wait()
	}
	if len(acked) < 20 {
		t.Fatalf("only %d items acknowledged; the test proves little", len(acked))
	}
	drain := child("drain", 0)
	if out, err := drain.Output(); err != nil || !strings.Contains(string(out), "DRAINED") {
		t.Fatalf("drain: %v\n%s", err, out)
	}

	s, db, _, err := openKillService(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	defer s.Close(ctx)
	ids, _ := os.ReadFile(filepath.Join(dir, "ids"))
	dsID, collID := strings.Fields(string(ids))[0], strings.Fields(string(ids))[1]
	list, total, err := s.DataList(ctx, "team", collID, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, d := range list {
		seen[d.Q]++
	}
	failures, _ := s.TrainingFailures(ctx, "team", collID, 1<<20)
	for _, f := range failures {
		seen[f.Q]++
	}
	for q := range acked {
		if seen[q] != 1 {
			t.Errorf("acknowledged %q ended %d times", q, seen[q])
		}
	}
	for q, n := range seen {
		if n > 1 {
			t.Errorf("%q stored %d times", q, n)
		}
	}
	st, _ := dataset.NewBoltStore(db)
	vectors := 0
	_ = st.EachVector(ctx, func(ds string, v dataset.Vector) error {
		if ds == dsID {
			vectors++
		}
		return nil
	})
	if vectors != total {
		t.Errorf("%d vectors for %d data items", vectors, total)
	}
	t.Logf("%d acknowledged, %d stored (%d more pushed but unacknowledged), %d failed, %d vectors",
		len(acked), total, total-len(acked)+len(failures), len(failures), vectors)

	// each search finds a sample of them
	n := 0
	for q := range acked {
		if n++; n > 10 {
			break
		}
		// the vector search ranks the exact text first; the full-text one
		// (items differ by a digit or two) has it among the first three
		for _, mode := range []string{dataset.SearchEmbedding, dataset.SearchFullText} {
			found := func(hits []dataset.SearchHit) bool {
				for i, h := range hits {
					if h.Q == q && (i == 0 || mode == dataset.SearchFullText) {
						return true
					}
				}
				return false
			}
			var hits []dataset.SearchHit
			for range 300 {
				res, err := s.Search(ctx, dataset.SearchRequest{TeamID: "team", DatasetIDs: []string{dsID}, Text: q, Mode: mode, Limit: 3})
				if err != nil {
					t.Fatal(err)
				}
				if hits = res.Hits; found(hits) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if !found(hits) {
				t.Errorf("%s search for %q: %+v", mode, q, hits)
			}
		}
	}
}
