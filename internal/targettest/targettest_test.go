package targettest

import (
	"encoding/base64"
	"testing"
)

// Leaked finds a secret whole, by its first 40 characters, or by those of
// its auth encoding; short secrets whole; nothing in text without them.
func TestLeaked(t *testing.T) {
	t.Parallel()
	pw := NewPassword()
	auth := base64.StdEncoding.EncodeToString([]byte("AWS:" + pw))
	for _, tc := range []struct {
		name, text, secret string
		want               bool
	}{
		{"Whole", "token " + pw + " in a line", pw, true},
		{"Prefix", "cut: " + pw[:40], pw, true},
		{"AuthPrefix", `{"auth":"` + auth[:40] + `"}`, pw, true},
		{"Short", "key rancher-token-secret in a line", "rancher-token-secret", true},
		{"Clean", "secret written", pw, false},
		{"ShortPrefixOnly", "rancher-token", "rancher-token-secret", false},
		{"Empty", "anything", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Leaked(tc.text, tc.secret); got != tc.want {
				t.Errorf("Leaked = %v, want %v", got, tc.want)
			}
		})
	}
}
