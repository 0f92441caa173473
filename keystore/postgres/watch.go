package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/keystore"
)

const (
	// watchPingEvery is how long Watch waits without a notification before it checks its
	// connection with a ping: a silently dropped connection is noticed within about
	// watchPingEvery + watchPingTimeout.
	watchPingEvery   = 10 * time.Second
	watchPingTimeout = 5 * time.Second
)

// Watch calls fn for every change that can deny access committed after its LISTEN, by
// any instance on this database, until ctx ends or the store is closed; it then returns
// nil. fn runs on Watch's goroutine; Change.At is when the notification arrived. Right
// after its LISTEN, Watch calls fn once with a Change naming no principal and no key:
// changes committed before it (while a previous Watch was down) were seen by no one, and
// the caller revalidates what it cached.
//
// Watch holds a connection of its own, outside the pool, that runs LISTEN keygate_changes
// and waits for notifications, pinging the server after watchPingEvery of silence. It
// returns an error when that connection fails or is lost: notifications may then have
// been missed, and the caller calls Watch again and revalidates what it cached.
func (s *Store) Watch(ctx context.Context, fn func(keystore.Change)) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.watches.Add(1)
	s.mu.Unlock()
	defer s.watches.Done()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.closing, cancel)()

	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig)
	if err != nil {
		return watchErr(ctx, err)
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Second)
		defer ccancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+changeChannel); err != nil {
		return watchErr(ctx, err)
	}
	// Listening from now on: whatever changed before (since a previous Watch failed, or
	// before the first one) was announced to no one. The zero Change tells the caller to
	// revalidate what it cached (keystore.Cache.Evict).
	fn(keystore.Change{At: s.nowUTC()})
	for {
		wctx, wcancel := context.WithTimeout(ctx, watchPingEvery)
		n, err := conn.WaitForNotification(wctx)
		timedOut := errors.Is(wctx.Err(), context.DeadlineExceeded)
		wcancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && timedOut {
			pctx, pcancel := context.WithTimeout(ctx, watchPingTimeout)
			err = conn.Ping(pctx)
			pcancel()
			if err == nil {
				continue
			}
		}
		if err != nil {
			return watchErr(ctx, err)
		}
		if n.Channel != changeChannel {
			continue
		}
		principalID, keyID, _ := strings.Cut(n.Payload, "|")
		fn(keystore.Change{PrincipalID: principalID, KeyID: keyID, At: s.nowUTC()})
	}
}

// watchErr is nil once ctx has ended (the end of a watch, not a failure).
func watchErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return wrap("watch", err)
}
