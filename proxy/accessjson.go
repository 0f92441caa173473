package proxy

import (
	"encoding/json"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// accessJSON writes the access line of a request that went well as one JSON object, with
// the keys and value formats of log/slog's JSONHandler (time in RFC 3339 with
// milliseconds, duration in nanoseconds), straight into the log's buffered writer: the
// line every request pays for costs a fifth of slog's generic path. Requests with an
// error, and text logs, go through slog.
type accessJSON struct {
	w     io.Writer // one Write per line; the writer serialises them
	pool  sync.Pool
	stamp atomic.Pointer[stamp] // the second of the latest line, formatted
}

// stamp is one second formatted as slog formats it, split around the milliseconds: lines
// of the same second copy it rather than format the time again.
type stamp struct {
	sec        int64
	loc        *time.Location
	date, zone string // "2006-01-02T15:04:05", "Z07:00"
}

func newAccessJSON(w io.Writer) *accessJSON {
	return &accessJSON{w: w, pool: sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}}
}

// write appends the line of a request that started at rw.start and took d.
func (a *accessJSON) write(rw *recorder, method, route string, d time.Duration) {
	bp := a.pool.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"time":"`...)
	b = a.appendTime(b, rw.start.Add(d))
	b = append(b, `","level":"INFO","msg":"request","request_id":`...)
	b = appendJSONString(b, rw.requestID)
	b = append(b, `,"route":`...)
	b = appendJSONString(b, route)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, method)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(rw.status), 10)
	b = append(b, `,"duration":`...)
	b = strconv.AppendInt(b, int64(d), 10)
	b = append(b, `,"client_ip":"`...)
	if rw.clientIP.IsValid() {
		b = rw.clientIP.AppendTo(b)
	}
	b = append(b, `","principal":`...)
	b = appendJSONString(b, rw.id.PrincipalID())
	b = append(b, `,"key_id":`...)
	b = appendJSONString(b, entryKeyID(&rw.id))
	b = append(b, `,"auth":"`...)
	b = append(b, rw.result.String()...)
	b = append(b, `","bytes":`...)
	b = strconv.AppendInt(b, rw.written, 10)
	b = append(b, "}\n"...)
	a.w.Write(b)
	*bp = b
	a.pool.Put(bp)
}

// appendTime appends t as "2006-01-02T15:04:05.000Z07:00".
func (a *accessJSON) appendTime(b []byte, t time.Time) []byte {
	s := a.stamp.Load()
	if s == nil || s.sec != t.Unix() || s.loc != t.Location() {
		s = &stamp{sec: t.Unix(), loc: t.Location(), date: t.Format("2006-01-02T15:04:05"), zone: t.Format("Z07:00")}
		a.stamp.Store(s)
	}
	ms := t.Nanosecond() / 1e6
	b = append(b, s.date...)
	b = append(b, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	return append(b, s.zone...)
}

// appendJSONString appends s as a JSON string: as it is when it is plain printable ASCII
// (every value of the line is, by validation), else through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
