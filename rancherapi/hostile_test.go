package rancherapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// echoError answers with a Cattle error envelope built by f from what the
// request carried.
func echoError(status int, f func(auth, body string) (code, msg, field string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		code, msg, field := f(r.Header.Get("Authorization"), string(b))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"type": "error", "status": status, "code": code, "message": msg, "fieldName": field})
	}
}

// A server that echoes the request into code, message and fieldName, or sends
// a 900 KB code, gets a bounded error holding no secret of the request.
func TestClient_ErrorEchoesNoSecret(t *testing.T) {
	t.Parallel()
	const password = "ecr-password-DO-NOT-LEAK-0123456789"
	basic := base64.StdEncoding.EncodeToString([]byte(testAccess + ":" + testSecret))
	token := base64.StdEncoding.EncodeToString([]byte("AWS:" + password)) // how ECR hands it out
	tests := []struct {
		name string
		f    func(auth, body string) (string, string, string)
	}{
		{"BodyEverywhere", func(auth, body string) (string, string, string) { return body, "bad body: " + body, body }},
		{"AuthInMessage", func(auth, body string) (string, string, string) {
			return "InvalidBodyContent", "header was " + auth, "x"
		}},
		{"DecodedAuth", func(auth, body string) (string, string, string) {
			return "PermissionDenied", "key " + testAccess + ":" + testSecret + " refused", ""
		}},
		{"Base64Password", func(auth, body string) (string, string, string) {
			return "NotUnique", "token " + token + " already used", ""
		}},
		{"URLEscaped", func(auth, body string) (string, string, string) {
			return "MissingRequired", "secretValue=" + strings.ReplaceAll(password, "-", "%2D") + "&x", "secretValue"
		}},
		{"HalfThePassword", func(auth, body string) (string, string, string) {
			return "NotUnique", "starts " + password[:len(password)/2], ""
		}},
		{"HugeCode", func(auth, body string) (string, string, string) {
			return strings.Repeat("C", 900<<10), strings.Repeat("m", 900<<10), strings.Repeat("f", 900<<10)
		}},
		{"ControlChars", func(auth, body string) (string, string, string) {
			return "NotUnique", "line1\nlevel=error msg=\"forged\"\r\x1b[31m", "registry\nId"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, mux, _ := setup(t)
			mux.HandleFunc("/v2-beta/projects/1a5/registrycredentials/1c1", echoError(422, tt.f))
			_, err := c.UpdateRegistryCredential(t.Context(), "1c1", CredentialInput{PublicValue: "AWS", SecretValue: password, Email: "x@y"})
			var e *Error
			if !errors.As(err, &e) || e.StatusCode != 422 {
				t.Fatalf("err = %v, want a 422 *Error", err)
			}
			msg := err.Error()
			if len(msg) > 600 {
				t.Errorf("error is %d bytes long: %.300q…", len(msg), msg)
			}
			for _, s := range []string{password, password[:len(password)/2], testSecret, basic, token[4:40]} {
				if strings.Contains(msg, s) {
					t.Errorf("error holds %q: %s", s, msg)
				}
			}
			if strings.ContainsAny(msg, "\n\r\x1b") {
				t.Errorf("error holds control characters: %q", msg)
			}
			if e.Code != "" && !knownCodes[e.Code] || len(e.FieldName) > 64 || len(e.Message) > maxMessageLen+len("…") {
				t.Errorf("code %.40q, field %.40q, message %d bytes: want known, plain, bounded", e.Code, e.FieldName, len(e.Message))
			}
		})
	}
}

func TestSafeMessage(t *testing.T) {
	t.Parallel()
	secrets := []string{"hunter2hunter2", "token-abcde:longsecretvalue"}
	tests := []struct{ in, want string }{
		{"registryId is required", "registryId is required"},
		{"password hunter2hunter2 is wrong", "password [REDACTED] is wrong"},
		{`value "xxhunter2hunter2yy" rejected`, `value "[REDACTED]" rejected`},
		{"Bearer token-abcde:longsecretvalue", "Bearer [REDACTED]"},
		{"b64 " + base64.StdEncoding.EncodeToString([]byte("u:hunter2hunter2")) + " end", "b64 [REDACTED] end"},
		{"prefix hunter2hunte", "(message withheld: it quotes what was sent)"},
		{strings.Repeat("é", 300), strings.Repeat("é", 100) + "…"},
		{"tab\tnew\nline", "tab new line"},
		{"\xff\xfe bad utf8", "? bad utf8"},
	}
	for _, tt := range tests {
		if got := safeMessage(tt.in, secrets); got != tt.want {
			t.Errorf("safeMessage(%.40q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// A secret found in the marker itself must not loop forever.
	if got := safeMessage("pw REDACTED or [REDACTED]", []string{"REDACTED"}); got != "pw [REDACTED] or [[REDACTED]]" {
		t.Errorf("secret \"REDACTED\": %q", got)
	}
	if got := safeMessage("the pw is abc!", []string{"abc!"}); got != "" {
		t.Errorf("a short secret is not withheld: %q", got)
	}
}

// writeRepeat writes head, n times s, then tail, without building the whole
// body in memory (the server shares the test's heap).
func writeRepeat(w io.Writer, head, s string, n int, tail string) {
	if _, err := io.WriteString(w, head); err != nil {
		return
	}
	chunk := strings.Repeat(s, max(1, (64<<10)/len(s)))
	per := len(chunk) / len(s)
	for ; n > 0; n -= per {
		if n < per {
			chunk = chunk[:n*len(s)]
		}
		if _, err := io.WriteString(w, chunk); err != nil {
			return
		}
	}
	_, _ = io.WriteString(w, tail)
}

// heapPeak runs f and returns the highest heap in use seen while it ran, above
// what was in use before.
func heapPeak(t *testing.T, f func()) uint64 {
	t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(2 * time.Millisecond)
		defer tk.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-done:
				return
			case <-tk.C:
			}
		}
	}()
	f()
	runtime.ReadMemStats(&ms)
	close(done)
	wg.Wait()
	p := max(peak.Load(), ms.HeapAlloc)
	if p < base {
		return 0
	}
	return p - base
}

// Memory stays bounded whatever the server sends: a 60 MiB page of {} items,
// fat items up to the byte bound, one huge item, endless pages. Not parallel:
// it measures the process's heap.
func TestClient_ListBounded(t *testing.T) {
	const limit = 100 << 20
	fat := `{"id":"1sp1","serverAddress":"h","description":"` + strings.Repeat("d", 600) + `"}`
	fatter := `{"id":"1sp1","serverAddress":"h","description":"` + strings.Repeat("d", 1000) + `"}`
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string // "" for success
		wantLen int
		full    bool // reads the whole 64 MiB: too slow under the race detector
	}{
		{name: "EmptyItems60MiB", want: "more than 100000 entries", handler: func(w http.ResponseWriter, r *http.Request) {
			writeRepeat(w, `{"type":"collection","data":[{}`, `,{}`, (60<<20)/3, `]}`)
		}},
		{name: "FatItemsAtTheBound", full: true, wantLen: MaxListEntries - 1, handler: func(w http.ResponseWriter, r *http.Request) {
			writeRepeat(w, `{"type":"collection","data":[`+fat, ","+fat, MaxListEntries-2, `]}`)
		}},
		{name: "OneHugeItem", want: "one entry larger than 1 MiB", handler: func(w http.ResponseWriter, r *http.Request) {
			writeRepeat(w, `{"type":"collection","data":[{"serverAddress":"`, "h", 60<<20, `"}]}`)
		}},
		{name: "HugeType", want: "one entry larger than 1 MiB", handler: func(w http.ResponseWriter, r *http.Request) {
			writeRepeat(w, `{"type":"`, "c", 60<<20, `","data":[]}`)
		}},
		{name: "EverNewFatPages", full: true, want: "larger than 64 MiB across its pages", handler: func(w http.ResponseWriter, r *http.Request) {
			n := len(r.URL.Query().Get("marker"))
			writeRepeat(w, `{"type":"collection","data":[`+fatter, ","+fatter, 999,
				fmt.Sprintf(`],"pagination":{"next":"/v2-beta/projects/1a5/registries?marker=%s"}}`, strings.Repeat("m", n+1)))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.full && raceEnabled {
				t.Skip("reads 64 MiB: run without -race (.ci/run does)")
			}
			c, mux, _ := setup(t)
			mux.HandleFunc("/v2-beta/projects/1a5/registries", tt.handler)
			var regs []Registry
			var err error
			start := time.Now()
			grew := heapPeak(t, func() { regs, err = c.ListRegistries(t.Context()) })
			t.Logf("heap peak +%.1f MB in %s", float64(grew)/(1<<20), time.Since(start).Round(time.Millisecond))
			if tt.want == "" && (err != nil || len(regs) != tt.wantLen) {
				t.Fatalf("got %d registries, %v; want %d", len(regs), err, tt.wantLen)
			}
			if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if grew > limit {
				t.Errorf("heap grew by %d MB while listing, want < %d MB", grew>>20, limit>>20)
			}
		})
	}
}

// A listing stops when its context is canceled, even mid-page.
func TestClient_ListCanceledMidPage(t *testing.T) {
	t.Parallel()
	c, mux, _ := setup(t)
	ctx, cancel := context.WithCancel(t.Context())
	mux.HandleFunc("/v2-beta/projects/1a5/registries", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"type":"collection","data":[{}`)
		for i := 0; r.Context().Err() == nil; i++ {
			if _, err := io.WriteString(w, strings.Repeat(`,{}`, 100)); err != nil {
				return
			}
			if i == 10 {
				w.(http.Flusher).Flush()
				cancel()
			}
		}
	})
	done := make(chan error, 1)
	go func() { _, err := c.ListRegistries(ctx); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("listing did not stop within 10s of its context being canceled")
	}
}
