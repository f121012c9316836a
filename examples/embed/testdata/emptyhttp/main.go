// Command emptyhttp is the smallest net/http server: the yardstick the
// embed example's binary is measured against.
package main

import "net/http"

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	_ = http.ListenAndServe("127.0.0.1:0", mux)
}
