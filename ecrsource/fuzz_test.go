package ecrsource

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

func TestDecodeToken(t *testing.T) {
	t.Parallel()
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name, in, user, pw, err string
	}{
		{name: "Plain", in: b64("AWS:secret"), user: "AWS", pw: "secret"},
		{name: "ColonInPassword", in: b64("AWS:a:b:c"), user: "AWS", pw: "a:b:c"},
		{name: "Long", in: b64("AWS:" + strings.Repeat("x", 3500)), user: "AWS", pw: strings.Repeat("x", 3500)},
		{name: "SurroundingSpace", in: " " + b64("AWS:secret") + "\n", user: "AWS", pw: "secret"},
		{name: "NotBase64", in: "!!!notb64", err: "not base64"},
		{name: "URLEncoding", in: base64.URLEncoding.EncodeToString([]byte("AWS:??>>secret")), err: "not base64"},
		{name: "NoColon", in: b64("AWSsecret"), err: "no user:password separator"},
		{name: "EmptyUser", in: b64(":secret"), err: "empty user"},
		{name: "EmptyPassword", in: b64("AWS:"), err: "empty password"},
		{name: "Empty", in: "", err: "no user:password separator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, pw, err := decodeToken(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				if strings.Contains(err.Error(), "secret") || (tt.in != "" && strings.Contains(err.Error(), tt.in)) {
					t.Errorf("error prints the token: %v", err)
				}
				return
			}
			if err != nil || user != tt.user || pw != tt.pw {
				t.Errorf("decodeToken = %q, %q, %v", user, pw, err)
			}
		})
	}
}

func TestClampExpiry(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		exp     *time.Time
		want    time.Time
		clamped bool
	}{
		{"Normal", aws.Time(now.Add(12 * time.Hour)), now.Add(12 * time.Hour), false},
		{"Short", aws.Time(now.Add(time.Hour)), now.Add(time.Hour), false},
		{"SlightlyLong", aws.Time(now.Add(12*time.Hour + 4*time.Minute)), now.Add(12*time.Hour + 4*time.Minute), false},
		{"Past", aws.Time(time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)), now.Add(refresher.TokenLifetime), true},
		{"Now", aws.Time(now), now.Add(refresher.TokenLifetime), true},
		{"FarFuture", aws.Time(now.Add(48 * time.Hour)), now.Add(refresher.TokenLifetime), true},
		{"Missing", nil, now.Add(refresher.TokenLifetime), true},
	}
	for _, tt := range tests {
		got, clamped := clampExpiry(tt.exp, now)
		if !got.Equal(tt.want) || clamped != tt.clamped {
			t.Errorf("%s: clampExpiry = %v, %v, want %v, %v", tt.name, got, clamped, tt.want, tt.clamped)
		}
	}
}

// FuzzDecodeToken: no panic; a decoded token splits into a non-empty user
// without a colon and a non-empty password that encode back to it; an error
// never quotes the token. The seed corpus is under testdata/fuzz.
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
