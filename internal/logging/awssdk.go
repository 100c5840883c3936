package logging

import (
	"fmt"
	"strings"

	smithylog "github.com/aws/smithy-go/logging"
	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/redact"
)

// maxSDKLogLine bounds a line the AWS SDK logs.
const maxSDKLogLine = 1000

// SDKLogger sends the AWS SDK's own log lines (such as "falling back to
// IMDSv1") through the daemon's logger, so every line keeps LOG_FORMAT: the
// SDK's warnings stay warnings, anything else is debug. Without it the SDK
// prints raw lines of its own (aws-sdk-go-v2 config/config.go: the default
// logger writes to os.Stderr).
func SDKLogger(log logrus.FieldLogger) smithylog.Logger {
	return smithylog.LoggerFunc(func(c smithylog.Classification, format string, v ...any) {
		msg := redact.Bounded(strings.ToValidUTF8(fmt.Sprintf(format, v...), ""), maxSDKLogLine)
		l := log.WithField("source", "aws-sdk")
		if c == smithylog.Warn {
			l.Warn(msg)
			return
		}
		l.Debug(msg)
	})
}
