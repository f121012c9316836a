package main

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/shareauth"
)

func TestHost(t *testing.T) {
	srv := httptest.NewServer(NewHost("secret", map[string]bool{"alice": true}))
	defer srv.Close()
	call := func(path, body string, sign bool) (int, string) {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		if sign {
			ts := time.Now().Unix()
			req.Header.Set(shareauth.HeaderTimestamp, strconv.FormatInt(ts, 10))
			req.Header.Set(shareauth.HeaderSignature, shareauth.Sign("secret", ts, []byte(body)))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 512)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		return resp.StatusCode, b.String()
	}
	if code, body := call("/shareAuth/start", `{"token":"alice","question":"hi"}`, true); code != 200 || !strings.Contains(body, `"success":true`) || !strings.Contains(body, "user-alice") {
		t.Fatalf("approve: %d %s", code, body)
	}
	if code, body := call("/shareAuth/init", `{"token":"bob"}`, true); code != 200 || !strings.Contains(body, `"success":false`) {
		t.Fatalf("refuse: %d %s", code, body)
	}
	if code, _ := call("/shareAuth/start", `{"token":"alice"}`, false); code != 401 {
		t.Fatalf("unsigned call: %d", code)
	}
	if code, body := call("/shareAuth/finish", `{"token":"alice","responseData":[]}`, true); code != 200 || !strings.Contains(body, "true") {
		t.Fatalf("finish: %d %s", code, body)
	}
}
