package logging

import (
	"io"

	"github.com/sirupsen/logrus"
)

// New is the daemon's logger: JSON lines with format "json", else text with
// full timestamps and no colours, at level.
func New(out io.Writer, level logrus.Level, format string) *logrus.Logger {
	l := logrus.New()
	l.SetOutput(out)
	l.SetLevel(level)
	if format == "json" {
		l.SetFormatter(&logrus.JSONFormatter{})
	} else {
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, DisableColors: true})
	}
	return l
}
