package snapshot

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// tracker follows one collection's run. Counts only grow while chunks
// commit; documents read by a chunk that then fails are taken back.
type tracker struct {
	collection string
	kind       string
	estimated  int64
	base       int64 // documents already committed when this process began
	start      time.Time

	committed atomic.Int64 // documents in committed chunks, base included
	inflight  atomic.Int64 // documents read by chunks not yet committed
	state     atomic.Value // string
	finished  atomic.Int64 // unix nanos, 0 while running
}

func newTracker(collection, kind string, estimated, committed int64) *tracker {
	t := &tracker{collection: collection, kind: kind, estimated: estimated, base: committed, start: time.Now()}
	t.committed.Store(committed)
	t.state.Store(StatePlanning)
	return t
}

func (t *tracker) setState(s string) {
	t.state.Store(s)
	if s == StateDone || s == StateFailed {
		t.finished.Store(time.Now().UnixNano())
	}
}

func (t *tracker) copied() int64 { return t.committed.Load() + t.inflight.Load() }

func (t *tracker) total() int64 { return max(t.estimated, t.copied()) }

func (t *tracker) elapsed() time.Duration {
	if f := t.finished.Load(); f != 0 {
		return time.Unix(0, f).Sub(t.start)
	}
	return time.Since(t.start)
}

// rate is documents per second copied by this process.
func (t *tracker) rate() float64 {
	s := t.elapsed().Seconds()
	if s <= 0 {
		return 0
	}
	return float64(t.copied()-t.base) / s
}

// eta estimates the time left; -1 when unknown.
func (t *tracker) eta() time.Duration {
	left := t.estimated - t.copied()
	if left <= 0 {
		return 0
	}
	r := t.rate()
	if r <= 0 {
		return -1
	}
	return time.Duration(float64(left) / r * float64(time.Second))
}

// progress shows the trackers: bars redrawn in place on a terminal,
// periodic log lines otherwise.
type progress struct {
	mu       sync.Mutex
	trackers []*tracker
	out      io.Writer
	terminal bool
	interval time.Duration
	log      *slog.Logger
	drawn    int // lines drawn last time (terminal)
}

func (p *progress) add(t *tracker) {
	p.mu.Lock()
	p.trackers = append(p.trackers, t)
	p.mu.Unlock()
}

// run reports until ctx ends, then reports once more.
func (p *progress) run(ctx context.Context) {
	every := p.interval
	if p.terminal {
		every = 250 * time.Millisecond
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			p.report()
			return
		case <-tick.C:
			p.report()
		}
	}
}

func (p *progress) report() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.terminal && p.out != nil {
		p.draw()
		return
	}
	for _, t := range p.trackers {
		st := t.state.Load().(string)
		if st == StateDone && t.finished.Load() != 0 && time.Since(time.Unix(0, t.finished.Load())) > p.interval {
			continue // reported done already
		}
		p.log.Info("snapshot progress", "collection", t.collection, "kind", t.kind, "state", st,
			"documents", t.copied(), "estimated", t.total(), "rate_per_s", int64(t.rate()), "eta", fmtETA(t.eta()))
	}
}

// draw redraws one line per collection in place.
func (p *progress) draw() {
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	width := 0
	for _, t := range p.trackers {
		width = max(width, len(t.collection))
	}
	for _, t := range p.trackers {
		b.WriteString("\r\x1b[K")
		b.WriteString(progressLine(t, width))
		b.WriteByte('\n')
	}
	p.drawn = len(p.trackers)
	_, _ = io.WriteString(p.out, b.String())
}

const barWidth = 30

// progressLine renders "coll [#####.....]  45.2%  90412/200000 docs  12345/s  ETA 0:09 copying".
func progressLine(t *tracker, width int) string {
	copied, total := t.copied(), t.total()
	frac := 1.0
	if total > 0 {
		frac = float64(copied) / float64(total)
	}
	if st := t.state.Load().(string); st != StateDone && frac >= 1 {
		frac = 0.999
	}
	fill := int(frac * barWidth)
	bar := strings.Repeat("#", fill) + strings.Repeat(".", barWidth-fill)
	return fmt.Sprintf("%-*s [%s] %5.1f%% %d/%d docs %8.0f/s ETA %s %s",
		width, t.collection, bar, frac*100, copied, total, t.rate(), fmtETA(t.eta()), t.state.Load().(string))
}

func fmtETA(d time.Duration) string {
	if d < 0 {
		return "?"
	}
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}
