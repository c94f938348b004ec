// A Go test that passes while leaking: each request's response body is
// never closed, so every request holds a new connection for the rest of
// the test. `leakless watch --fail-on leak -- go test ./...` catches it.
package leaky

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestFetchUsers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"name":"gopher"}`))
	}))
	defer srv.Close()
	deadline := time.Now().Add(16 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		// resp.Body is never closed.
		time.Sleep(150 * time.Millisecond)
	}
}
