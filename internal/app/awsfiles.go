package app

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strings"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/sirupsen/logrus"
)

// The old image ran as root, so its documentation mounted AWS shared files at
// /root/.aws. This image runs as a non-root user whose home is elsewhere
// (/home/nonroot in distroless), and the AWS SDK reads
// $HOME/.aws/credentials and $HOME/.aws/config unless AWS_SHARED_CREDENTIALS_FILE
// / AWS_CONFIG_FILE say otherwise (aws-sdk-go-v2 internal/shareddefaults).

const legacyAWSDir = "/root/.aws"

// warnLegacyAWSFiles logs legacyAWSFilesWarning for this process, once.
func warnLegacyAWSFiles(log logrus.FieldLogger, getenv func(string) string) {
	var mounts []string
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		mounts = mountPoints(f)
		f.Close()
	}
	w := legacyAWSFilesWarning(awsconfig.DefaultSharedCredentialsFilename(), awsconfig.DefaultSharedConfigFilename(), getenv, pathPresent(mounts))
	if w != "" {
		log.Warn(w)
	}
}

// legacyAWSFilesWarning returns a warning when an AWS shared credentials or
// config file is present under /root/.aws but the SDK will read another path,
// or "" when there is nothing to say. sdkCredentials and sdkConfig are the SDK's
// default paths for this process; present reports whether a path exists (or is
// mounted but unreadable).
func legacyAWSFilesWarning(sdkCredentials, sdkConfig string, getenv func(string) string, present func(string) bool) string {
	var missed []string
	for _, f := range []struct{ env, legacy, sdk string }{
		{"AWS_SHARED_CREDENTIALS_FILE", filepath.Join(legacyAWSDir, "credentials"), sdkCredentials},
		{"AWS_CONFIG_FILE", filepath.Join(legacyAWSDir, "config"), sdkConfig},
	} {
		if getenv(f.env) != "" || filepath.Clean(f.sdk) == f.legacy || !present(f.legacy) {
			continue
		}
		missed = append(missed, f.legacy+" (the SDK reads "+f.sdk+"; "+f.env+" is unset)")
	}
	if len(missed) == 0 {
		return ""
	}
	home := filepath.Dir(filepath.Dir(sdkCredentials))
	return "AWS files under " + legacyAWSDir + " are ignored: " + strings.Join(missed, ", ") +
		". This image runs as a non-root user, not as root like the old image: mount the directory at " +
		filepath.Join(home, ".aws") + " instead, or mount the file anywhere this user can read and set " +
		"AWS_SHARED_CREDENTIALS_FILE (and AWS_CONFIG_FILE) to it"
}

// pathPresent reports whether p exists, or is a mount point (or inside one):
// as a non-root user /root is usually unreadable, so a volume mounted at
// /root/.aws shows only in the mount table.
func pathPresent(mounts []string) func(string) bool {
	return func(p string) bool {
		if _, err := os.Stat(p); err == nil {
			return true
		}
		for _, m := range mounts {
			if m == p || m == filepath.Dir(p) {
				return true
			}
		}
		return false
	}
}

// mountPoints reads the mount points (field 5) of /proc/self/mountinfo:
// https://man7.org/linux/man-pages/man5/proc_pid_mountinfo.5.html
func mountPoints(r io.Reader) []string {
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 4 {
			out = append(out, unescapeMountinfo(f[4]))
		}
	}
	return out
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of mountinfo.
func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1:i+4]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '7' {
			return false
		}
	}
	return len(s) == 3
}
