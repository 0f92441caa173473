package main

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// bufferedWriter batches log lines: written out when 64 KiB fill up, at least every
// 100 ms, and on Close, so the access log costs no system call per request.
type bufferedWriter struct {
	mu   sync.Mutex
	w    *bufio.Writer
	done chan struct{}
	wg   sync.WaitGroup
}

func newBufferedWriter(w io.Writer) *bufferedWriter {
	b := &bufferedWriter{w: bufio.NewWriterSize(w, 64*1024), done: make(chan struct{})}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				b.Flush()
			case <-b.done:
				return
			}
		}
	}()
	return b
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

// Flush writes out what is buffered.
func (b *bufferedWriter) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.w.Flush()
}

// Close stops the ticker and flushes.
func (b *bufferedWriter) Close() error {
	close(b.done)
	b.wg.Wait()
	b.Flush()
	return nil
}
