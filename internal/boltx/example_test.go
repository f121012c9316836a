package boltx_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/chatgate/chatgate/internal/boltx"
)

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "boltx")
	defer os.RemoveAll(dir)
	db, err := boltx.Open(filepath.Join(dir, "chatgate.db"), time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	fmt.Println(boltx.EnsureBuckets(db, []byte("example")))
	// Output: <nil>
}
