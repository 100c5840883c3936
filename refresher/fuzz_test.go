package refresher

import (
	"encoding/base64"
	"strings"
	"testing"
)

// FuzzNormalizeHost: no panic; what it returns is lowercase host characters and
// a fixed point.
func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{"https://111122223333.dkr.ecr.us-east-1.amazonaws.com/", "Host:5000/path", "[::1]:5000",
		"x..", "::0", "-", "_", "[", "host.:05000", "http://[fe80::1%25eth0]:5000", "a_b.c-d:65535"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		h, err := NormalizeHost(addr)
		if err != nil {
			return
		}
		if h == "" || strings.Trim(h, "abcdefghijklmnopqrstuvwxyz0123456789.-_:[]") != "" {
			t.Fatalf("NormalizeHost(%q) = %q", addr, h)
		}
		if again, err := NormalizeHost(h); err != nil || again != h {
			t.Fatalf("NormalizeHost(%q) = %q, but NormalizeHost(%q) = %q, %v", addr, h, h, again, err)
		}
	})
}

// FuzzDecodeToken: no panic; a decoded token splits into a non-empty user
// without a colon and a non-empty password that encode back to it; an error
// never quotes the token.
func FuzzDecodeToken(f *testing.F) {
	for _, s := range []string{"AWS:pw", "AWS:pa:ss:word", "nocolon", ":pw", "AWS:", ""} {
		f.Add(base64.StdEncoding.EncodeToString([]byte(s)))
	}
	f.Add("not base64!")
	f.Fuzz(func(t *testing.T, b64 string) {
		user, pw, err := decodeToken(b64)
		if err != nil {
			// The fixed wording may hold a short input by chance ("base64").
			fixed := "malformed ecr answer: authorization token is not base64 has no user:password separator an empty user name password"
			if len(b64) >= 8 && strings.Contains(err.Error(), b64) && !strings.Contains(fixed, b64) {
				t.Fatalf("error quotes the token: %v", err)
			}
			return
		}
		if user == "" || pw == "" || strings.Contains(user, ":") {
			t.Fatalf("decodeToken(%q) = %q, %q", b64, user, pw)
		}
		raw, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
		if string(raw) != user+":"+pw {
			t.Fatalf("decodeToken(%q) = %q, %q; want the split of %q", b64, user, pw, raw)
		}
	})
}
