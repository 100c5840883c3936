// Package logging is the daemon's logger and the adapters that route what
// libraries log (client-go's klog, the AWS SDK) through it, so every line keeps
// LOG_FORMAT.
package logging

import (
	"github.com/go-logr/logr"
	"github.com/sirupsen/logrus"
	"k8s.io/klog/v2"
)

// RouteKlog sends what client-go logs through klog (leader election, watch
// restarts, the API server's warnings) to the daemon's logger, so
// LOG_FORMAT=json stays one format: errors at warn, the rest at debug. klog's
// logger is process-wide, so it is set only where a Kubernetes client is built.
func RouteKlog(log logrus.FieldLogger) {
	klog.SetLogger(logr.New(klogSink{l: log.WithField("source", "client-go")}))
}

// klogSink is a logr.LogSink over logrus. Verbosity above 0 is client-go's
// tracing (request dumps among it) and is dropped.
type klogSink struct {
	l    logrus.FieldLogger
	name string
}

func (s klogSink) Init(logr.RuntimeInfo)  {}
func (s klogSink) Enabled(level int) bool { return level <= 0 }

func (s klogSink) Info(level int, msg string, kv ...any) {
	if level <= 0 {
		s.entry(kv).Debug(msg)
	}
}

func (s klogSink) Error(err error, msg string, kv ...any) {
	e := s.entry(kv)
	if err != nil {
		e = e.WithError(err)
	}
	e.Warn(msg)
}

func (s klogSink) WithValues(kv ...any) logr.LogSink { return klogSink{l: s.entry(kv), name: s.name} }

func (s klogSink) WithName(name string) logr.LogSink {
	if s.name != "" {
		name = s.name + "/" + name
	}
	return klogSink{l: s.l.WithField("logger", name), name: name}
}

func (s klogSink) entry(kv []any) logrus.FieldLogger {
	l := s.l
	for i := 0; i+1 < len(kv); i += 2 {
		if k, ok := kv[i].(string); ok {
			l = l.WithField(k, kv[i+1])
		}
	}
	return l
}
