package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/keygate/keygate/config"
)

// The whole proxy path in one process: a client, the handler under test and an upstream,
// over loopback. BenchmarkBare is httputil.ReverseProxy alone (as ../shared/bench's bare
// proxy); the difference to BenchmarkGateway is keygate's own cost per request.
//
//	go test -run '^$' -bench 'Bare|Gateway' -benchmem ./proxy/

func benchUpstream(b *testing.B) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"principal":"`+r.Header.Get("X-Auth-Principal")+`"}`)
	}))
	b.Cleanup(up.Close)
	return up
}

func runProxyBench(b *testing.B, h http.Handler, header, value string) {
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	b.Cleanup(tr.CloseIdleConnections)
	b.ReportAllocs()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", srv.URL+"/api/items", nil)
			req.Header.Set(header, value)
			res, err := tr.RoundTrip(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Fatalf("status %d", res.StatusCode)
			}
		}
	})
}

func BenchmarkBare(b *testing.B) {
	up := benchUpstream(b)
	target, _ := url.Parse(up.URL)
	rp := &httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.SetXForwarded() },
		Transport:  &http.Transport{MaxIdleConnsPerHost: 1024},
		BufferPool: newBufferPool(),
	}
	runProxyBench(b, rp, "X-API-Key", goodKey)
}

func BenchmarkGateway(b *testing.B) {
	up := benchUpstream(b)
	cfg := config.Default()
	u, _ := url.Parse(up.URL)
	rc := config.DefaultRoute()
	rc.Name, rc.Match.PathPrefix, rc.Upstream = "api", "/api/", config.URL{URL: u}
	cfg.Routes = []config.Route{rc}
	g := New(Options{Config: &cfg, Verifier: fakeVerifier{}, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	runProxyBench(b, g, "X-API-Key", goodKey)
}

// BenchmarkAccessLog is the access-log line alone, as finish writes it.
func BenchmarkAccessLog(b *testing.B) {
	g := New(Options{Config: &config.Config{}, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	r := httptest.NewRequest("GET", "/api/items", nil)
	rw := &recorder{ResponseWriter: httptest.NewRecorder(), status: 200, requestID: "abc-1", route: &route{name: "api"}}
	rw.route.duration = g.m.duration.WithLabelValues("api")
	b.ReportAllocs()
	for b.Loop() {
		g.finish(rw, r)
	}
}

// BenchmarkAccessJSON is the direct access line that replaces slog's on the JSON log.
func BenchmarkAccessJSON(b *testing.B) {
	a := newAccessJSON(io.Discard)
	rw := &recorder{status: 200, requestID: "abc-1", route: &route{name: "api"}}
	b.ReportAllocs()
	for b.Loop() {
		a.write(rw, "GET", "api", time.Millisecond)
	}
}
