package proxy

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/keystore"
)

// The direct access line has the keys and value types of the slog line it replaces.
func TestAccessJSONMatchesSlog(t *testing.T) {
	rw := &recorder{status: 200, requestID: "abc-1", clientIP: netip.MustParseAddr("10.1.2.3"), written: 42,
		result: auth.ResultOK, id: auth.Identity{Method: auth.MethodKey, Entry: &keystore.Entry{
			Key: keystore.Key{ID: "key-1"}, Principal: keystore.Principal{ID: "acme"}}}}
	rw.start = time.Now().Add(-1500 * time.Microsecond)
	var direct bytes.Buffer
	newAccessJSON(&direct).write(rw, "GET", "api", 1500*time.Microsecond)

	var viaSlog bytes.Buffer
	g := &Gateway{log: slog.New(slog.NewJSONHandler(&viaSlog, nil)), m: newMetrics(nil)}
	rt := &route{name: "api", duration: g.m.duration.WithLabelValues("api")}
	rw.route = rt
	g.finish(rw, httptest.NewRequest("GET", "/api/x", nil))

	var a, b map[string]any
	if err := json.Unmarshal(direct.Bytes(), &a); err != nil {
		t.Fatalf("direct line %q: %v", direct.String(), err)
	}
	if err := json.Unmarshal(viaSlog.Bytes(), &b); err != nil {
		t.Fatalf("slog line %q: %v", viaSlog.String(), err)
	}
	keys := func(m map[string]any) []string {
		var k []string
		for x := range m {
			k = append(k, x)
		}
		slices.Sort(k)
		return k
	}
	if !slices.Equal(keys(a), keys(b)) {
		t.Errorf("keys: direct %v, slog %v", keys(a), keys(b))
	}
	for _, k := range []string{"level", "msg", "request_id", "route", "method", "status", "client_ip", "principal", "key_id", "auth", "bytes"} {
		if a[k] != b[k] {
			t.Errorf("%s: direct %v, slog %v", k, a[k], b[k])
		}
	}
	if _, err := time.Parse(time.RFC3339, a["time"].(string)); err != nil {
		t.Errorf("time %v: %v", a["time"], err)
	}
	if appendJSONString(nil, "a\"b\n") == nil || string(appendJSONString(nil, "a\"b\n")) != `"a\"b\n"` {
		t.Errorf("appendJSONString escapes = %s", appendJSONString(nil, "a\"b\n"))
	}
}

// The time of the line is formatted as slog formats it, in every zone, also for lines of
// one second that reuse its formatted part.
func TestAccessJSONTime(t *testing.T) {
	east := time.FixedZone("east", 5*3600+30*60)
	west := time.FixedZone("west", -8*3600)
	a := newAccessJSON(nil)
	for _, tc := range []time.Time{
		time.Date(2026, 11, 27, 13, 4, 5, 0, time.UTC),
		time.Date(2026, 11, 27, 13, 4, 5, 7_000_000, time.UTC), // same second
		time.Date(2026, 11, 27, 13, 4, 5, 999_999_999, time.UTC),
		time.Date(2026, 11, 27, 13, 4, 6, 120_500_000, time.UTC),
		time.Date(2026, 11, 27, 13, 4, 6, 120_500_000, time.UTC).In(east), // same second, other zone
		time.Date(2026, 3, 29, 1, 0, 0, 50_000_000, west),
	} {
		for range 2 { // formatted, then from the stamp
			got := string(a.appendTime(nil, tc))
			if want := tc.Format("2006-01-02T15:04:05.000Z07:00"); got != want {
				t.Errorf("appendTime(%v) = %s, want %s", tc, got, want)
			}
		}
	}
}
