package fsm

import (
	"context"
	"log/slog"
)

// logRecord is a log line written on the loop and emitted after it is
// left.
type logRecord struct {
	logger *slog.Logger
	level  slog.Level
	msg    string
	args   []any
}

// Log queues a log line for logger; it is emitted when the event ends, once
// the loop is no longer held, so that a slow log handler never stalls the
// loop. Call it with the loop held. A nil logger means the loop's.
func (l *Loop) Log(logger *slog.Logger, level slog.Level, msg string, args ...any) {
	if logger == nil {
		logger = l.logger
	}
	if !logger.Enabled(context.Background(), level) {
		return
	}
	l.logs = append(l.logs, logRecord{logger: logger, level: level, msg: msg, args: args})
}

// takeLogs returns the queued log lines and empties the queue. The loop
// must be held.
func (l *Loop) takeLogs() []logRecord {
	logs := l.logs
	l.logs = nil
	return logs
}

// Later queues f to run when the event ends, after the loop is released
// and its log lines are written: for a user's callback, which may take its
// time or call the pool, and must never run with the loop held. Call it
// with the loop held; the functions of one event run in the order queued,
// on the goroutine that ends the event.
func (l *Loop) Later(f func()) { l.later = append(l.later, f) }

// emit writes log lines taken with takeLogs, without the loop held.
func emit(logs []logRecord) {
	for _, r := range logs {
		r.logger.Log(context.Background(), r.level, r.msg, r.args...)
	}
}
