package app

import (
	"strings"
	"testing"
)

func TestLegacyAWSFilesWarning(t *testing.T) {
	t.Parallel()
	const (
		nonrootCreds  = "/home/nonroot/.aws/credentials"
		nonrootConfig = "/home/nonroot/.aws/config"
	)
	tests := map[string]struct {
		sdkCreds, sdkConfig string
		env                 map[string]string
		present             []string
		want                []string // substrings; none means no warning
	}{
		"old mount, non-root": {nonrootCreds, nonrootConfig, nil, []string{"/root/.aws/credentials"},
			[]string{"/root/.aws/credentials (the SDK reads /home/nonroot/.aws/credentials; AWS_SHARED_CREDENTIALS_FILE is unset)",
				"mount the directory at /home/nonroot/.aws", "AWS_SHARED_CREDENTIALS_FILE"}},
		"both files": {nonrootCreds, nonrootConfig, nil, []string{"/root/.aws/credentials", "/root/.aws/config"},
			[]string{"/root/.aws/credentials (", "/root/.aws/config (the SDK reads /home/nonroot/.aws/config; AWS_CONFIG_FILE is unset)"}},
		"only config": {nonrootCreds, nonrootConfig, nil, []string{"/root/.aws/config"}, []string{"/root/.aws/config ("}},
		"running as root reads it": {"/root/.aws/credentials", "/root/.aws/config", nil,
			[]string{"/root/.aws/credentials", "/root/.aws/config"}, nil},
		"credentials file named explicitly": {nonrootCreds, nonrootConfig,
			map[string]string{"AWS_SHARED_CREDENTIALS_FILE": "/root/.aws/credentials"}, []string{"/root/.aws/credentials"}, nil},
		"nothing under /root": {nonrootCreds, nonrootConfig, nil, nil, nil},
		"new mount path":      {nonrootCreds, nonrootConfig, nil, []string{nonrootCreds}, nil},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			present := func(p string) bool {
				for _, q := range tt.present {
					if p == q {
						return true
					}
				}
				return false
			}
			got := legacyAWSFilesWarning(tt.sdkCreds, tt.sdkConfig, func(k string) string { return tt.env[k] }, present)
			if len(tt.want) == 0 && got != "" {
				t.Errorf("unexpected warning: %s", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("warning %q lacks %q", got, w)
				}
			}
		})
	}
}

// A volume at /root/.aws is found from the mount table even when /root itself
// cannot be read (the image's user is not root).
func TestPathPresent_Mounts(t *testing.T) {
	t.Parallel()
	mountinfo := `22 1 0:21 / / rw,relatime - overlay overlay rw
35 22 8:1 /home/u/.aws /root/.aws ro,relatime - ext4 /dev/sda1 rw
36 22 8:1 /srv/my\040creds /etc/aws\040creds/credentials ro - ext4 /dev/sda1 rw
`
	present := pathPresent(mountPoints(strings.NewReader(mountinfo)))
	dir := t.TempDir()
	for p, want := range map[string]bool{
		"/root/.aws/credentials":         true,
		"/root/.aws/config":              true,
		"/etc/aws creds/credentials":     true,
		"/root/.awsx/credentials":        false,
		dir:                              true, // exists
		dir + "/no-such-file":            false,
		"/no-such-dir/.aws/credentials/": false,
	} {
		if got := present(p); got != want {
			t.Errorf("present(%q) = %v, want %v", p, got, want)
		}
	}
}
