package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/replicator/redact"
	"github.com/mongopg/replicator/transform"
)

// errNotRead: a server was not read because the time ran out first.
var errNotRead = errors.New("not read: --timeout ran out before")

// statusGatherer opens the buffer and the target for `status` and reads
// the report through replicator.ReadStatus. It remembers which server it
// is waiting for, so a timeout can name it.
type statusGatherer struct {
	cfg     *config.Config
	timeout time.Duration
	src     replicator.StatusSources

	mu      sync.Mutex
	waiting string // "buffer" or "target" while opening it
}

func newStatusGatherer(cfg *config.Config, mappings []*transform.Mapping, timeout time.Duration) *statusGatherer {
	bc := cfg.ForBuffer()
	url := bc.URL
	if url == "" {
		url = "embedded (data_dir " + bc.DataDir + ")"
	}
	g := &statusGatherer{cfg: cfg, timeout: timeout,
		src: replicator.StatusSources{BufferURL: url, BufferStream: bc.WithDefaults().Stream, Source: cfg.ForCapture().Source}}
	g.src.Collections = config.Units(mappings)
	return g
}

func (g *statusGatherer) wait(what string) {
	g.mu.Lock()
	g.waiting = what
	g.mu.Unlock()
}

// read opens both servers and reads the status; it closes what it opened.
func (g *statusGatherer) read(ctx context.Context) replicator.Status {
	src := g.src
	g.wait("buffer")
	buf, err := buffer.Open(ctx, g.cfg.ForBuffer(), nil)
	var refused *buffer.RefusedError
	switch {
	case errors.As(err, &refused):
		src.BufferErr = refused // it names the server and the cause
	case err != nil:
		src.BufferErr = g.noAnswer(ctx, "NATS at "+redact.String(src.BufferURL), err)
	default:
		defer buf.Close()
		src.Buffer = buf
	}
	if url := g.cfg.Target.URL; url != "" {
		g.wait("target")
		if ctx.Err() != nil {
			src.TargetErr = fmt.Errorf("%w reaching PostgreSQL", errNotRead)
		} else if pool, err := replicator.OpenTarget(ctx, url, replicator.TargetConns(g.cfg, 0)); err != nil {
			src.TargetErr = g.noAnswer(ctx, "PostgreSQL", err)
		} else {
			defer pool.Close()
			src.Target = pool
		}
	}
	g.wait("")
	return replicator.ReadStatus(ctx, src)
}

// timedOut is the report when read did not return in time: the server it
// was waiting for did not answer, and nothing after it was read.
func (g *statusGatherer) timedOut() replicator.Status {
	g.mu.Lock()
	waiting := g.waiting
	g.mu.Unlock()
	src := g.src
	late := fmt.Errorf("did not answer within %s", g.timeout)
	switch waiting {
	case "target":
		src.BufferErr = fmt.Errorf("%w (status gave up waiting for PostgreSQL)", errNotRead)
		src.TargetErr = fmt.Errorf("PostgreSQL %w", late)
	default:
		src.BufferErr = fmt.Errorf("NATS at %s %w", redact.String(src.BufferURL), late)
		if g.cfg.Target.URL != "" {
			src.TargetErr = fmt.Errorf("%w reaching NATS", errNotRead)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // nothing is opened: ReadStatus does no I/O
	return replicator.ReadStatus(ctx, src)
}

// noAnswer names server in an error caused by the deadline.
func (g *statusGatherer) noAnswer(ctx context.Context, server string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s did not answer within %s (%w)", server, g.timeout, err)
	}
	return err
}
