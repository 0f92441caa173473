package proxy

import (
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// newTransport returns the tuned transport for upstreams whose response headers must
// arrive within headerTimeout. Routes with the same timeout share one, so connections
// are reused across them.
func newTransport(headerTimeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy: nil, // never an environment proxy between keygate and its upstreams
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: headerTimeout,
		ForceAttemptHTTP2:     true,
	}
}

// timedTransport observes the time to the upstream's response headers.
type timedTransport struct {
	next http.RoundTripper
	obs  prometheus.Observer
}

func (t timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	res, err := t.next.RoundTrip(r)
	t.obs.Observe(time.Since(start).Seconds())
	return res, err
}

// bufferPool pools the reverse proxy's 32 KiB copy buffers.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}}
}

func (b *bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufferPool) Put(x []byte) { b.p.Put(&x) }
