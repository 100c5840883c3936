package main

import (
	"fmt"
	"strings"

	"github.com/aws/smithy-go/logging"
	"github.com/sirupsen/logrus"
)

// maxSDKLogLine bounds a line the AWS SDK logs.
const maxSDKLogLine = 1000

// sdkLogger sends the AWS SDK's own log lines (such as "falling back to
// IMDSv1") through the daemon's logger, so every line keeps LOG_FORMAT: the
// SDK's warnings stay warnings, anything else is debug. Without it the SDK
// prints raw lines of its own (aws-sdk-go-v2 config/config.go: the default
// logger writes to os.Stderr).
func sdkLogger(log logrus.FieldLogger) logging.Logger {
	return logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		msg := strings.ToValidUTF8(fmt.Sprintf(format, v...), "")
		if len(msg) > maxSDKLogLine {
			msg = strings.ToValidUTF8(msg[:maxSDKLogLine], "") + "…"
		}
		l := log.WithField("source", "aws-sdk")
		if c == logging.Warn {
			l.Warn(msg)
			return
		}
		l.Debug(msg)
	})
}
