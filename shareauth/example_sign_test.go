package shareauth_test

import (
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/chatgate/chatgate/shareauth"
)

// The owner's server checks every callback with a Verifier holding the
// link's secret.
func ExampleVerifier() {
	secret := "cgs_example"
	body := `{"token":"alice","question":"hi"}`
	ts := time.Now().Unix()
	r := httptest.NewRequest("POST", "/shareAuth/start", strings.NewReader(body))
	r.Header.Set(shareauth.HeaderTimestamp, strconv.FormatInt(ts, 10))
	r.Header.Set(shareauth.HeaderSignature, shareauth.Sign(secret, ts, []byte(body)))

	v := &shareauth.Verifier{Secret: secret}
	got, err := v.Verify(r)
	fmt.Println(string(got), err)
	// Output: {"token":"alice","question":"hi"} <nil>
}
