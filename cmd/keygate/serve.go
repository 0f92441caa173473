package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/keystore"
	"github.com/keygate/keygate/proxy"
	"github.com/keygate/keygate/ratelimit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
)

func newServeCmd() *cobra.Command {
	var dev bool
	cmd := &cobra.Command{
		Use:   "serve [--config FILE] [--dev]",
		Short: "Run the gateway: the public listener and the admin listener",
		Long: `Run the gateway: the public listener (routes to upstreams) and the admin listener
(/healthz, /readyz, /metrics, /v1/). SIGINT or SIGTERM stop accepting, let in-flight
requests finish for up to shutdown_timeout, and close the store.

With --dev no configuration file is needed: a temporary embedded store, a built-in echo
upstream, and a demo principal, key and admin token printed with ready-to-paste curl lines.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// SIGHUP never kills keygate, not even while it starts (a migration may wait on
			// another instance's lock); serve logs it once it runs.
			signal.Ignore(syscall.SIGHUP)
			setGCPercent()
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if dev {
				return serveDev(ctx, cmd)
			}
			cfg, err := loadConfig(configPath(cmd))
			if err != nil {
				return err
			}
			pub, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			adm, err := net.Listen("tcp", cfg.Admin.Listen)
			if err != nil {
				pub.Close()
				return fmt.Errorf("admin.listen: %w", err)
			}
			return serve(ctx, cfg, pub, adm, nil)
		},
	}
	cmd.Flags().BoolVar(&dev, "dev", false, "run with a temporary store, an echo upstream and demo credentials")
	return cmd
}

// defaultGCPercent is the garbage collector's target for serve unless GOGC is set: a
// gateway's live heap is small (tens of MiB) and its allocation rate high, so the default
// of 100 collects tens of times a second. 200 cut the CPU per proxied request by about 10%
// here for a few MiB more (docs/benchmarks.md); GOGC and GOMEMLIMIT still rule when set.
const defaultGCPercent = 200

func setGCPercent() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}

// serve runs the gateway on the two listeners until ctx ends, then drains and closes.
// ready, when set, is called once both listeners serve, with the opened store.
func serve(ctx context.Context, cfg *config.Config, pub, adm net.Listener, ready func(keystore.Store) error) error {
	logw := newBufferedWriter(os.Stderr)
	defer logw.Close()
	log := newLogger(logw, cfg.Log)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "keygate_build_info", Help: "The running keygate's version and Go version; always 1.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	reg.MustRegister(buildInfo)

	// Migrations run at start on both stores; on PostgreSQL under an advisory lock, so
	// instances starting together never race.
	store, err := openStore(ctx, cfg, true)
	if err != nil {
		pub.Close()
		adm.Close()
		return err
	}
	defer store.Close()

	bg, cancelBG := context.WithCancel(context.Background())
	defer cancelBG()
	cache := keystore.NewCache(store, keystore.CacheOptions{
		TTL:         cfg.Store.Cache.TTL,
		NegativeTTL: cfg.Store.Cache.NegativeTTL,
		StaleTTL:    cfg.Store.Cache.StaleTTL,
		MaxEntries:  cfg.Store.Cache.MaxEntries,
		Log:         log,
		Registerer:  reg,
	})
	usage := keystore.NewUsageRecorder(store, log)
	limits, err := ratelimit.New(cfg.RateLimit, cfg.Auth.FailedAttempts, ratelimit.Options{Log: log, Registerer: reg})
	if err != nil {
		pub.Close()
		adm.Close()
		return fmt.Errorf("ratelimit: %w", err)
	}
	defer limits.Close()

	authn := auth.NewAuthenticator(auth.Options{
		Format:           keyFormat(cfg),
		Hasher:           hasher(cfg),
		Keys:             cache,
		AcceptLegacy:     cfg.Keys.AcceptLegacy,
		Rehash:           cache.QueueRehash,
		Principals:       store,
		Attempts:         limits,
		BasicCacheTTL:    cfg.Auth.BasicCacheTTL,
		MaxConcurrentKDF: cfg.Auth.MaxConcurrentKDF,
		RehashPassword:   passwordRehasher(bg, store, log),
		Registerer:       reg,
	})
	cache.Notify(authn.Evict, authn.Flush)
	var bgWG sync.WaitGroup
	bgWG.Go(func() { cache.Watch(bg) })
	bgWG.Go(func() { cache.RunRehash(bg) })
	bgWG.Go(func() { authn.RunRehash(bg) })
	bgWG.Go(func() { usage.Run(bg, cfg.Store.UsageFlushInterval) })

	storeReady := newStoreReadiness(store, cfg.Store.Cache.StaleTTL, reg)
	var self http.Handler
	if cfg.SelfService.Enabled {
		self = admin.SelfService(admin.SelfServiceOptions{
			Store: store, Keys: cfg.Keys, Hasher: hasher(cfg), Path: cfg.SelfService.Path,
			Realm: cfg.Auth.Realm, Evicted: cache.Evict, Log: log,
		})
	}
	var access io.Writer // access lines of JSON logs skip slog's generic encoder
	if cfg.Log.Format != "text" {
		access = logw
	}
	gw := proxy.New(proxy.Options{Config: cfg, Verifier: authn, Limiter: limits, SelfService: self,
		Usage: usage, AccessLog: access, Log: log, Registerer: reg})
	api := admin.New(admin.Options{
		Store:    store,
		Tokens:   cfg.Admin.Tokens,
		Keys:     cfg.Keys,
		Hasher:   hasher(cfg),
		Gatherer: reg,
		Checks:   map[string]admin.Readiness{"store": storeReady, "ratelimit": limits},
		Evicted:  cache.Evict,
		Log:      log,
	})

	errLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	servers := []*http.Server{
		{Handler: gw, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
			MaxHeaderBytes: 64 << 10, ErrorLog: errLog},
		{Handler: api, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
			ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, MaxHeaderBytes: 64 << 10, ErrorLog: errLog},
	}
	errc := make(chan error, 2)
	for i, ln := range []net.Listener{pub, adm} {
		go func() {
			if err := servers[i].Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	log.Info("listening", slog.String("listen", pub.Addr().String()), slog.String("admin", adm.Addr().String()),
		slog.String("store", cfg.Store.Driver), slog.String("version", version))
	if ready != nil {
		if err := ready(store); err != nil {
			return err
		}
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			log.Warn("SIGHUP ignored: configuration reload is not supported; restart to apply changes")
			continue
		case err = <-errc:
			log.Error("listener failed", slog.String("error", err.Error()))
		case <-ctx.Done():
		}
		break
	}
	log.Info("shutting down", slog.Duration("timeout", cfg.ShutdownTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	for _, s := range servers {
		s.SetKeepAlivesEnabled(false)
	}
	done := make(chan error, len(servers))
	for _, s := range servers {
		go func() { done <- s.Shutdown(sctx) }()
	}
	for range servers {
		if e := <-done; e != nil {
			log.Warn("shutdown did not drain every request", slog.String("error", e.Error()))
		}
	}
	cancelBG()
	bgWG.Wait() // the last usage flush, before the store closes
	log.Info("stopped")
	return err
}
