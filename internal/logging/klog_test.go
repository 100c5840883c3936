package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	smithylog "github.com/aws/smithy-go/logging"
	"github.com/go-logr/logr"
	"github.com/sirupsen/logrus"
)

// What client-go logs through klog reaches the daemon's logger in its format:
// one JSON object per line with LOG_FORMAT=json, errors at warn, client-go's
// verbose tracing dropped.
func TestKlogSink(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := logrus.New()
	l.SetOutput(&buf)
	l.SetFormatter(&logrus.JSONFormatter{})
	l.SetLevel(logrus.DebugLevel)
	log := logr.New(klogSink{l: l.WithField("source", "client-go")}).WithName("leaderelection")
	log.Info("attempting to acquire leader lease", "lease", "ns/rancher-ecr-credentials")
	log.V(4).Info("GET https://10.0.0.1/api/v1/namespaces 200 OK")
	log.Error(errors.New("context deadline exceeded"), "failed to renew lease", "lease", "ns/rancher-ecr-credentials")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2 (verbose tracing dropped):\n%s", len(lines), buf.String())
	}
	for i, want := range []struct{ level, msg string }{{"debug", "attempting to acquire leader lease"}, {"warning", "failed to renew lease"}} {
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
			t.Fatalf("line %d is not the daemon's JSON: %q", i, lines[i])
		}
		if m["level"] != want.level || m["msg"] != want.msg || m["logger"] != "leaderelection" || m["lease"] != "ns/rancher-ecr-credentials" || m["source"] != "client-go" {
			t.Errorf("line %d = %v, want level %s, msg %q, with logger, lease and source fields", i, m, want.level, want.msg)
		}
	}
}

// The AWS SDK's warnings stay warnings, the rest is debug, and a line is bounded.
func TestSDKLogger(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := New(&buf, logrus.DebugLevel, "json")
	sdk := SDKLogger(l)
	sdk.Logf(smithylog.Warn, "falling back to %s", "IMDSv1")
	sdk.Logf(smithylog.Debug, "%s", strings.Repeat("x", 5000))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines:\n%s", len(lines), buf.String())
	}
	for i, want := range []string{"warning", "debug"} {
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &m); err != nil || m["level"] != want || m["source"] != "aws-sdk" {
			t.Errorf("line %d = %s, want level %s from aws-sdk", i, lines[i], want)
		}
		if msg, _ := m["msg"].(string); len(msg) > maxSDKLogLine+len("…") {
			t.Errorf("line %d: message of %d bytes", i, len(msg))
		}
	}
}
