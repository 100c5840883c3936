package rancherapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// FuzzDecodePage: any body decodes without panic, within the budget, and every
// item handed back was counted.
func FuzzDecodePage(f *testing.F) {
	for _, s := range []string{
		`{"type":"collection","data":[{"id":"1sp1","serverAddress":"h"}],"pagination":{"next":"/x?marker=m1"}}`,
		`{"type":"collection","data":[{"id":"p:x","registries":{"h":{"username":"AWS"}}}]}`,
		`{"type":"collection","data":null}`, `{"type":"project"}`, `{"data":[{},{},{}],"type":"collection"}`,
		`[]`, `{"type":"collection","data":[1]}`, `{"type":"collection","data":[{"registries":null}]`, `<html>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b := &budget{entries: 50, maxEntries: 50, bytes: 4096, limit: 4096}
		var regs []Registry
		next, err := decodePage(t.Context(), bytes.NewReader(body), b, &regs)
		if b.entries < -1 || (err == nil && b.entries < 0) {
			t.Fatalf("entries budget overdrawn: %d", b.entries)
		}
		if err == nil && len(regs) > 50 {
			t.Fatalf("%d items past a budget of 50", len(regs))
		}
		if err != nil && next != "" {
			t.Fatalf("next %q with error %v", next, err)
		}
		b = &budget{entries: 50, maxEntries: 50, bytes: 4096, limit: 4096}
		var creds []DockerCredential
		if _, err := decodePage(t.Context(), bytes.NewReader(body), b, &creds); err == nil {
			n := 0
			for _, c := range creds {
				n += c.entries()
			}
			if n > 50 {
				t.Fatalf("%d entries past a budget of 50", n)
			}
		}
	})
}

// FuzzCheckResponse: whatever the error body, the *Error keeps a known code, a
// plain field name and a bounded message, none holding the request's secrets.
func FuzzCheckResponse(f *testing.F) {
	f.Add(422, []byte(`{"type":"error","code":"MissingRequired","fieldName":"email","message":"x"}`), "pw-0123456789")
	f.Add(400, []byte(`{"code":"S3cr3t-pw-0123456789","message":"echo S3cr3t-pw-0123456789"}`), "pw-0123456789")
	f.Add(500, []byte(`not json`), "abcdefghijkl")
	f.Add(400, []byte(`{"code":"NotUnique","message":"REDACTED"}`), "REDACTED") // looped forever once
	f.Add(401, []byte(`{"message":"Basic `+base64.StdEncoding.EncodeToString([]byte("ak:S3cr3t-key-0123456789"))+`"}`), "key-0123456789")
	f.Fuzz(func(t *testing.T, status int, body []byte, s string) {
		if status < 300 || status > 599 || len(s) < 6 {
			return
		}
		secret, key := s, "K3y-"+s
		// What the client writes itself may hold the secret by chance; the
		// call must still end.
		leakCheck := true
		for _, own := range []string{http.StatusText(status), "[REDACTED]", "(message withheld: it quotes what was sent)", "…"} {
			leakCheck = leakCheck && !strings.Contains(own, secret)
		}
		req, err := http.NewRequest(http.MethodPut, "http://127.0.0.1/v2-beta/registrycredentials/1c1",
			strings.NewReader(`{"secretValue":`+quote(secret)+`}`))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("ak", key)
		resp := &http.Response{StatusCode: status, Body: io.NopCloser(bytes.NewReader(body))}
		var e *Error
		if err := checkResponse(req, resp); err == nil {
			t.Fatal("no error for a non-2xx status")
		} else {
			e = err.(*Error)
		}
		if e.Code != "" && !knownCodes[e.Code] {
			t.Errorf("unknown code kept: %q", e.Code)
		}
		if e.FieldName != safeFieldName(e.FieldName) {
			t.Errorf("field name kept: %q", e.FieldName)
		}
		if len(e.Message) > maxMessageLen+len("…") {
			t.Errorf("message of %d bytes", len(e.Message))
		}
		for _, sec := range []string{secret, key, base64.StdEncoding.EncodeToString([]byte("ak:" + key))} {
			if !leakCheck {
				break
			}
			for _, part := range []string{e.Code, e.FieldName, e.Message} {
				if strings.Contains(part, sec) {
					t.Errorf("%q holds secret %q", part, sec)
				}
			}
		}
	})
}

func quote(s string) string {
	var b bytes.Buffer
	_ = jsonEncode(&b, s)
	return strings.TrimSpace(b.String())
}

// FuzzParseURL: any string parses or fails without panic; a parsed URL is
// http(s), holds no credentials, ends in "/", and parses again to itself.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"http://rancher.example.com", "https://r:8443/v3/project/c-x:p-y", "http://h/v2-beta/projects/1a5/",
		"http://u:p@h/v1", "http://h/%zz", "rancher", "http://[::1]:8080/prefix/v1", "http://h/v3/projects/a%2Fb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		a, err := ParseURL(raw)
		if err != nil {
			return
		}
		base := a.Base.String()
		if a.Base.User != nil || (a.Base.Scheme != "http" && a.Base.Scheme != "https") || !strings.HasSuffix(base, "/") {
			t.Fatalf("ParseURL(%q).Base = %q", raw, base)
		}
		b, err := ParseURL(base)
		if err != nil || b.Base.String() != base || b.Project != a.Project || b.Rancher2 != a.Rancher2 {
			t.Fatalf("ParseURL(%q) = %q (project %q), but ParseURL(%q) = %v (project %q), %v", raw, base, a.Project, base, b.Base, b.Project, err)
		}
	})
}

func jsonEncode(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }
