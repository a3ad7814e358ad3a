package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/replicator/capture"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/replicator/verify"
	"github.com/mongopg/replicator/sink"
	"github.com/mongopg/replicator/transform"
)

func cutoverCommand() command {
	return command{
		name:    "cutover",
		summary: "wait until PostgreSQL has caught up, verify it, write the hand-off report",
		run:     runCutover,
	}
}

const cutoverSummary = "The hand-off checklist before readers move from MongoDB to PostgreSQL, for\n" +
	"the selected collections (stop writes to them in MongoDB first):\n" +
	"  1. drain: read the source's majority cluster time T, then wait until\n" +
	"     capture's saved position is past T and, per collection, the apply\n" +
	"     checkpoint is at or past T and the apply consumer has nothing pending\n" +
	"     (progress on standard error every 2s); a running replicator gets there\n" +
	"     on its heartbeats even when the collections are idle;\n" +
	"  2. record capture's final position (resume token, cluster time) and the\n" +
	"     source's cluster time;\n" +
	"  3. verify each collection as `replicator verify` does;\n" +
	"  4. count each collection's unresolved dead letters;\n" +
	"  5. write the report as Markdown and JSON into --out, cutover-<UTC time>.md\n" +
	"     and .json, and print their paths.\n" +
	"PASS only when every collection drained, verified equal and has no\n" +
	"unresolved dead letter.\n\n" +
	"Exit status: 0 PASS; 1 FAIL (the report is written; the reasons go to\n" +
	"standard error), also when the drain does not finish within --timeout (each\n" +
	"collection named with what it waits for) or a server cannot be read;\n" +
	"2 for bad flags, a collection not in the file or a --module matching none."

// cutoverDeadLettersListed is how many unresolved dead letters the report
// lists per collection; it counts all of them.
const cutoverDeadLettersListed = 20

// drainPoll is how often the drain reads the checkpoints and consumers.
const drainPoll = 500 * time.Millisecond

func runCutover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl, err := parseCutoverFlags(args, stderr)
	if err != nil {
		return err
	}
	cfg, selected, err := fl.load(stderr)
	if err != nil {
		return err
	}
	out, err := newReportFiles(fl.outDir)
	if err != nil {
		return err
	}
	client, err := replicator.OpenSource(cfg.Source.URI, "replicator-cutover")
	if err != nil {
		return err
	}
	defer replicator.CloseSource(client)
	pool, err := replicator.OpenTarget(ctx, cfg.Target.URL, replicator.TargetConns(cfg, 0))
	if err != nil {
		return err
	}
	defer pool.Close()

	c := &cutover{cfg: cfg, maps: selected, client: client, pool: pool, stderr: stderr, timeout: fl.timeout}
	c.doc = cutoverDoc{StartedAt: time.Now().UTC(), Version: replicator.Build(), Config: absPath(fl.cfgPath), Module: fl.module,
		Selected: []string{}, Problems: []string{}, Collections: []cutoverCollection{}}
	for _, m := range selected {
		c.doc.Selected = append(c.doc.Selected, m.Namespace())
	}
	if err := c.run(ctx); err != nil {
		return err
	}
	c.judge()
	c.doc.FinishedAt = time.Now().UTC()
	if err := out.write(&c.doc); err != nil {
		return err
	}
	if fl.format == formatJSON {
		err = writeJSON(stdout, c.doc)
		fmt.Fprintf(stderr, "cutover report: %s\ncutover report: %s\n", c.doc.Files.Markdown, c.doc.Files.JSON)
	} else {
		err = writeCutoverText(stdout, &c.doc)
	}
	if err != nil {
		return err
	}
	if !c.doc.Pass {
		return fmt.Errorf("FAIL: %s", strings.Join(c.doc.Problems, "; "))
	}
	return nil
}

// cutoverFlags are the command line of one cutover.
type cutoverFlags struct {
	cfgPath     string
	collections []string
	module      string // "" unless --module is given
	moduleSet   bool
	outDir      string
	timeout     time.Duration
	format      outputFormat
}

func parseCutoverFlags(args []string, stderr io.Writer) (cutoverFlags, error) {
	var fl cutoverFlags
	fs := newFlagSet("cutover", "cutover --config FILE (--collection DB.COLL ... | --module PREFIX) [--out DIR] [--timeout D] [--format text|json]",
		cutoverSummary, stderr)
	fs.StringVar(&fl.cfgPath, "config", "replicator.yaml", "config `file`")
	fs.Func("collection", "hand over this source `namespace` (db.collection; repeat or comma-separate)", func(s string) error {
		fl.collections = append(fl.collections, splitList(s)...)
		return nil
	})
	fs.StringVar(&fl.module, "module", "", "hand over every configured collection whose namespace starts with this `prefix` (e.g. vuln.)")
	fs.StringVar(&fl.outDir, "out", ".", "write the report files into this `directory` (created if missing)")
	fs.DurationVar(&fl.timeout, "timeout", 10*time.Minute, "give up the drain after this `duration`")
	format := registerFormat(fs)
	if err := fs.Parse(args); err != nil {
		return fl, err
	}
	fl.format = *format
	fs.Visit(func(f *flag.Flag) { fl.moduleSet = fl.moduleSet || f.Name == "module" })
	switch {
	case fs.NArg() > 0:
		return fl, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	case fl.moduleSet && len(fl.collections) > 0:
		return fl, fmt.Errorf("%w: --collection and --module exclude each other", errUsage)
	case fl.moduleSet && fl.module == "":
		return fl, fmt.Errorf("%w: --module needs a namespace prefix, such as vuln.", errUsage)
	case !fl.moduleSet && len(fl.collections) == 0:
		return fl, fmt.Errorf("%w: name the collections to hand over: --collection DB.COLL (repeatable) or --module PREFIX", errUsage)
	case fl.timeout <= 0:
		return fl, fmt.Errorf("%w: --timeout %s: want a positive duration", errUsage, fl.timeout)
	}
	return fl, nil
}

// load reads the config file and selects the collections to hand over.
func (fl cutoverFlags) load(stderr io.Writer) (*config.Config, []*transform.Mapping, error) {
	cfg, maps, err := loadBothSides(fl.cfgPath, stderr)
	if err != nil {
		return nil, nil, err
	}
	var selected []*transform.Mapping
	if fl.moduleSet {
		selected, err = moduleMappings(cfg, maps, fl.module)
	} else {
		selected, err = selectMappings(cfg, maps, fl.collections)
	}
	return cfg, selected, err
}

// units lists the selected collections' apply units: a partitioned
// collection drains partition by partition.
func (c *cutover) units() []string { return config.Units(c.maps) }

// moduleMappings returns the mappings whose namespace starts with prefix,
// in the config's order; none is a usage error.
func moduleMappings(cfg *config.Config, maps []*transform.Mapping, prefix string) ([]*transform.Mapping, error) {
	var out []*transform.Mapping
	var names []string
	for _, m := range maps {
		names = append(names, m.Namespace())
		if strings.HasPrefix(m.Namespace(), prefix) {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: --module %q: no configured collection in %s starts with it; configured: %s",
			errUsage, prefix, cfg.File, strings.Join(names, ", "))
	}
	return out, nil
}

// cutover runs the steps of one hand-off and fills its report.
type cutover struct {
	cfg     *config.Config
	maps    []*transform.Mapping
	client  *mongo.Client
	pool    *pgxpool.Pool
	buf     *buffer.Buffer // open during run
	stderr  io.Writer
	timeout time.Duration
	doc     cutoverDoc
}

// run does steps 1 to 4. It returns an error only when the cutover cannot
// be judged at all (a server that cannot be reached to start with, or an
// interruption); what goes wrong later is recorded in the report.
func (c *cutover) run(ctx context.Context) error {
	drainCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	target, err := capture.ClusterTime(drainCtx, c.client)
	if err != nil {
		return capture.SourceError(c.cfg.Source.URI, fmt.Errorf("source: %w", err))
	}
	buf, err := buffer.Open(drainCtx, c.cfg.ForBuffer(), nil)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("NATS did not answer within --timeout %s: %w", c.timeout, err)
		}
		return err
	}
	defer buf.Close()
	c.buf = buf
	if err := c.drain(ctx, drainCtx, buf, target); err != nil {
		return err
	}
	c.recordCapture(ctx, buf)
	if err := c.verify(ctx); err != nil {
		return err
	}
	c.deadLetters(ctx)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	return nil
}

// drain is step 1: it waits until every selected collection has applied
// everything up to target, or until drainCtx ends.
func (c *cutover) drain(ctx, drainCtx context.Context, buf *buffer.Buffer, target transform.ClusterTime) error {
	d := &c.doc.Drain
	d.StartedAt, d.TimeoutSeconds = time.Now().UTC(), c.timeout.Seconds()
	fmt.Fprintf(c.stderr, "cutover: draining %d collection(s) to source cluster time %s (timeout %s)\n",
		len(c.doc.Selected), replicator.FormatClusterTime(target), c.timeout)
	ccfg := c.cfg.ForCapture()
	stall := max(3*ccfg.HeartbeatInterval, 3*time.Second)
	dr := replicator.NewDrainer(replicator.DrainSources{Buffer: buf, Target: c.pool, Source: ccfg.Source, Collections: c.units()},
		target, stall)
	st, err := dr.Wait(drainCtx, drainPoll, drainProgress(c.stderr, d.StartedAt, c.timeout))
	d.DrainState, d.FinishedAt = st, time.Now().UTC()
	switch {
	case err == nil:
		fmt.Fprintf(c.stderr, "cutover: drained in %s\n", d.FinishedAt.Sub(d.StartedAt).Round(time.Millisecond))
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted while draining: %w", ctx.Err())
	}
	var why []string
	if !st.CaptureReached && st.CaptureWaiting != "" {
		why = append(why, "capture: "+st.CaptureWaiting)
	}
	for _, cs := range st.Collections {
		if !cs.Drained {
			why = append(why, cs.Collection+": "+cs.Waiting)
		}
	}
	d.Error = fmt.Sprintf("not drained within %s (target cluster time %d.%d): %s", c.timeout, target.T, target.I, strings.Join(why, "; "))
	fmt.Fprintf(c.stderr, "cutover: drain: %s\n", d.Error)
	return nil
}

// drainProgress prints what the drain still waits for, at most every
// progressInterval.
func drainProgress(w io.Writer, start time.Time, timeout time.Duration) func(replicator.DrainState) {
	var last time.Time
	return func(st replicator.DrainState) {
		if time.Since(last) < progressInterval {
			return
		}
		last = time.Now()
		waiting := 0
		for _, c := range st.Collections {
			if !c.Drained {
				waiting++
			}
		}
		fmt.Fprintf(w, "cutover: waiting for %d of %d collection(s) (%s of %s)\n", waiting, len(st.Collections),
			time.Since(start).Round(time.Second), timeout)
		if !st.CaptureReached && st.CaptureWaiting != "" {
			fmt.Fprintf(w, "  capture: %s\n", st.CaptureWaiting)
		}
		for _, c := range st.Collections {
			if !c.Drained {
				fmt.Fprintf(w, "  %s: %s\n", c.Collection, c.Waiting)
			}
		}
	}
}

// recordCapture is step 2: capture's saved position, then the source's
// cluster time.
func (c *cutover) recordCapture(ctx context.Context, buf *buffer.Buffer) {
	src := c.cfg.ForCapture().Source
	r := &c.doc.Capture
	r.Source = src
	var errs []string
	pos, err := buf.Positions().Load(ctx, src)
	switch {
	case errors.Is(err, buffer.ErrNoPosition):
		errs = append(errs, fmt.Sprintf("no capture position saved for source %s", src))
	case err != nil:
		errs = append(errs, "capture position: "+buf.Cause(err).Error())
	default:
		r.Position = replicator.NewPositionStatus(pos, time.Now())
	}
	if ct, err := capture.ClusterTime(ctx, c.client); err != nil {
		errs = append(errs, capture.SourceError(c.cfg.Source.URI, fmt.Errorf("source cluster time: %w", err)).Error())
	} else {
		at := time.Unix(int64(ct.T), 0).UTC()
		r.SourceClusterTime, r.SourceTime = &ct, &at
	}
	r.RecordedAt = time.Now().UTC()
	r.Error = strings.Join(errs, "; ")
}

// verify is step 3, for the collections that drained; the others are
// not compared (their differences would be the lag).
func (c *cutover) verify(ctx context.Context) error {
	scfg := c.cfg.ForSnapshot()
	vcfg := verify.Config{ChunkSize: scfg.ChunkSize, BatchSize: scfg.BatchSize, Progress: progressPrinter(c.stderr)}
	drained := map[string]bool{}
	for _, cs := range c.doc.Drain.Collections {
		drained[cs.Collection] = cs.Drained
	}
	deps := verify.Deps{Source: c.client, Target: c.pool, Applied: replicator.AppliedWaiter(c.buf, c.pool, c.cfg.ForCapture().Source, config.UnitLookup(c.maps))}
	for _, m := range c.maps {
		ns := m.Namespace()
		cc := cutoverCollection{Collection: ns, Drained: drained[ns], DeadLetters: cutoverDeadLetters{First: []deadLetterJSON{}}}
		if !cc.Drained {
			cc.VerifySkipped = "not drained: its differences would be the apply lag"
		} else {
			rep, err := verify.Collection(ctx, deps, m, vcfg)
			switch {
			case ctx.Err() != nil:
				return fmt.Errorf("interrupted while verifying %s: %w", ns, ctx.Err())
			case err != nil:
				cc.VerifyError = capture.SourceError(c.cfg.Source.URI, err).Error()
			default:
				cc.Verify = &rep
			}
		}
		c.doc.Collections = append(c.doc.Collections, cc)
	}
	return nil
}

// deadLetters is step 4: each collection's unresolved dead letters.
func (c *cutover) deadLetters(ctx context.Context) {
	counts, err := sink.UnresolvedDeadLetters(ctx, c.pool, c.doc.Selected)
	for i := range c.doc.Collections {
		cc := &c.doc.Collections[i]
		if err != nil {
			cc.DeadLetters.Error = err.Error()
			continue
		}
		cc.DeadLetters.Unresolved = counts[cc.Collection]
		if cc.DeadLetters.Unresolved == 0 {
			continue
		}
		dls, err := sink.ListDeadLetters(ctx, c.pool, sink.DeadLetterFilter{Collection: cc.Collection, Limit: cutoverDeadLettersListed})
		if err != nil {
			cc.DeadLetters.Error = err.Error()
			continue
		}
		cc.DeadLetters.First = newDeadLettersDoc(dls).DeadLetters
	}
}

// judge sets the verdict and lists every reason for a FAIL.
func (c *cutover) judge() {
	d := &c.doc
	var ps []string
	if !d.Drain.Drained {
		ps = append(ps, "drain: "+d.Drain.Error)
	}
	if d.Capture.Error != "" {
		ps = append(ps, "capture position not recorded: "+d.Capture.Error)
	}
	for _, cc := range d.Collections {
		switch {
		case cc.VerifyError != "":
			ps = append(ps, fmt.Sprintf("%s: verify failed: %s", cc.Collection, cc.VerifyError))
		case cc.Verify != nil && !cc.Verify.Equal:
			ps = append(ps, fmt.Sprintf("%s differs: %s", cc.Collection, verifySummary(cc.Verify)))
		}
		if cc.Verify != nil && cc.Verify.InFlight.Count > 0 {
			// Neither equal nor different: writes still reach them, which a
			// cutover must have stopped.
			ps = append(ps, fmt.Sprintf("%s: %d document(s) still changing while verified: stop the application's writes to it", cc.Collection, cc.Verify.InFlight.Count))
		}
		switch dl := cc.DeadLetters; {
		case dl.Error != "":
			ps = append(ps, fmt.Sprintf("%s: dead letters not counted: %s", cc.Collection, dl.Error))
		case dl.Unresolved > 0:
			ps = append(ps, fmt.Sprintf("%s: %d unresolved dead letter(s) (replicator dlq list --collection %s)", cc.Collection, dl.Unresolved, cc.Collection))
		}
	}
	if ps == nil {
		ps = []string{}
	}
	d.Problems, d.Pass = ps, len(ps) == 0
	d.Verdict = "PASS"
	if !d.Pass {
		d.Verdict = "FAIL"
	}
}

// verifySummary says in one line what differs in r.
func verifySummary(r *verify.Report) string {
	var parts []string
	for _, t := range r.Tables {
		if d := t.Differences; d.Total > 0 {
			parts = append(parts, fmt.Sprintf("table %s: %d difference(s) (%d missing, %d extra, %d different)", t.Table, d.Total, d.Missing, d.Extra, d.Different))
		}
	}
	if n := r.TransformErrors.Count; n > 0 {
		parts = append(parts, fmt.Sprintf("%d document(s) fail to transform", n))
	}
	if n := r.DeadLettered.Count; n > 0 {
		parts = append(parts, fmt.Sprintf("%d dead-lettered document(s)", n))
	}
	return strings.Join(parts, ", ")
}
