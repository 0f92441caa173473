package admin

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
)

func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

type readyJSON struct {
	Status       string            `json:"status"`
	Dependencies map[string]string `json:"dependencies"`
}

// readyz asks every dependency at once, each within readyTimeout, and answers 200 when
// all are up or degraded, else 503; the body gives each one's state ("up", "degraded" or
// "down") either way. A check reports "degraded" with an error that has a Degraded() bool
// method returning true: the dependency is down but the instance serves under its
// configured failure mode.
// The reason a dependency is down is logged (at most once per readyLogEvery), never
// shown.
func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out = readyJSON{Status: "ready", Dependencies: make(map[string]string, len(a.checks))}
	)
	for name, c := range a.checks {
		wg.Go(func() {
			err := c.Ready(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				out.Dependencies[name] = "up"
				return
			}
			var d interface{ Degraded() bool }
			if errors.As(err, &d) && d.Degraded() {
				out.Dependencies[name] = "degraded" // down, but this instance still serves
			} else {
				out.Dependencies[name] = "down"
				out.Status = "unavailable"
			}
			if a.readyLog.allow(name, a.now()) {
				a.log.LogAttrs(r.Context(), slog.LevelWarn, "dependency not ready",
					slog.String("dependency", name), slog.String("error", err.Error()))
			}
		})
	}
	wg.Wait()
	status := http.StatusOK
	if out.Status != "ready" {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, out)
}
