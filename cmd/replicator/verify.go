package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/replicator/capture"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/replicator/verify"
	"github.com/mongopg/replicator/transform"
)

func verifyCommand() command {
	return command{
		name:    "verify",
		summary: "compare MongoDB with PostgreSQL through the mappings, table by table",
		run:     runVerify,
	}
}

// verifyDoc is verify's --format json document (README, Verifying before
// a cutover). Keep field names stable.
type verifyDoc struct {
	Equal       bool            `json:"equal"`
	Verdict     string          `json:"verdict"` // PASS or FAIL
	StartedAt   time.Time       `json:"started_at"`
	FinishedAt  time.Time       `json:"finished_at"`
	Collections []verify.Report `json:"collections"`
}

// progressInterval is how often verify reports documents read on stderr.
const progressInterval = 2 * time.Second

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const summary = "Read every document of the collections from MongoDB (in the snapshot's _id\n" +
		"ranges), turn each into the rows its mapping would write, and compare them with\n" +
		"PostgreSQL column by column, in every mapped table, as PostgreSQL compares values.\n" +
		"Reports row counts (per tenant too), an order-independent checksum per table and\n" +
		"every difference: missing, extra or different rows. Documents with unresolved dead\n" +
		"letters are reported apart. Safe while sync runs: differences are compared again once\n" +
		"the applier has caught up past their read, and a document that changed around its\n" +
		"read is read again; one still changing after --rounds is listed as in flight, not as a\n" +
		"difference. Exits 0 only when everything is equal, 1 otherwise."
	fs := newFlagSet("verify", "verify --config FILE [--collection DB.COLL ... | --all] [--format text|json] [--max-differences N] [--no-recheck | --rounds N] [--sample N | --repair]", summary, stderr)
	cfgPath := fs.String("config", "replicator.yaml", "config `file`")
	var collections []string
	fs.Func("collection", "verify this source `namespace` (db.collection; repeat or comma-separate; default: all)", func(s string) error {
		collections = append(collections, splitList(s)...)
		return nil
	})
	all := fs.Bool("all", false, "verify every configured collection (the default)")
	maxDiffs := fs.Int("max-differences", verify.DefaultMaxDifferences, "differing rows listed per table (and documents per list); counts are always complete")
	chunkSize := fs.Int("chunk-size", 0, "documents per _id range read (default: snapshot.chunk_size)")
	workers := fs.Int("workers", verify.DefaultWorkers, "ranges read from MongoDB and transformed at once")
	rounds := fs.Int("rounds", verify.DefaultRounds, "times differences are compared again after the applier has caught up")
	noRecheck := fs.Bool("no-recheck", false, "report the first comparison's differences as they are (no replicator writes to the target)")
	sample := fs.Int("sample", 0, "compare only the `N` newest documents (by _id) of every tenant PostgreSQL holds: a quick check")
	repair := fs.Bool("repair", false, "re-copy the documents whose rows differ, and delete rows no document gives, through the guarded write of a resync; then verify again")
	catchUp := fs.Duration("catch-up-timeout", verify.DefaultCatchUpTimeout, "how long each re-check waits for the applier to catch up")
	format := registerFormat(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *all && len(collections) > 0 {
		return fmt.Errorf("%w: --all and --collection exclude each other", errUsage)
	}
	if *maxDiffs < 1 {
		return fmt.Errorf("%w: --max-differences %d: want a positive number", errUsage, *maxDiffs)
	}
	if *chunkSize < 0 {
		return fmt.Errorf("%w: --chunk-size %d: want a positive number", errUsage, *chunkSize)
	}
	if *workers < 1 {
		return fmt.Errorf("%w: --workers %d: want a positive number", errUsage, *workers)
	}
	if *sample < 0 {
		return fmt.Errorf("%w: --sample %d: want a positive number of documents per tenant", errUsage, *sample)
	}
	if *sample > 0 && *repair {
		return fmt.Errorf("%w: --sample and --repair exclude each other: repair after a complete verification", errUsage)
	}
	if *rounds < 1 {
		return fmt.Errorf("%w: --rounds %d: want a positive number", errUsage, *rounds)
	}
	if *catchUp <= 0 {
		return fmt.Errorf("%w: --catch-up-timeout %s: want a positive duration", errUsage, *catchUp)
	}
	cfg, maps, err := loadBothSides(*cfgPath, stderr)
	if err != nil {
		return err
	}
	selected, err := selectMappings(cfg, maps, collections)
	if err != nil {
		return err
	}

	client, err := replicator.OpenSource(cfg.Source.URI, "replicator-verify")
	if err != nil {
		return err
	}
	defer replicator.CloseSource(client)
	pool, err := replicator.OpenTarget(ctx, cfg.Target.URL, 2)
	if err != nil {
		return err
	}
	defer pool.Close()

	deps := verify.Deps{Source: client, Target: pool}
	if *repair {
		writer, err := replicator.OpenWriter(ctx, cfg, 1)
		if err != nil {
			return err
		}
		defer writer.Close()
		deps.Writer = writer
	}
	if !*noRecheck {
		// The applier has caught up when capture's saved position, the apply
		// consumer and the checkpoint say so (replicator.AppliedWaiter).
		buf, err := openBuffer(ctx, cfg, "", "", "")
		if err == nil {
			defer buf.Close()
			err = buf.BindPositions(ctx)
		}
		if err != nil {
			fmt.Fprintf(stderr, "verify: warning: %v: differences are re-checked against the apply checkpoints alone\n", err)
		} else {
			deps.Applied = replicator.AppliedWaiter(buf, pool, cfg.ForCapture().Source, config.UnitLookup(maps))
		}
	}
	scfg := cfg.ForSnapshot()
	vcfg := verify.Config{ChunkSize: scfg.ChunkSize, BatchSize: scfg.BatchSize, MaxDifferences: *maxDiffs,
		Workers: *workers, Rounds: *rounds, NoRecheck: *noRecheck, CatchUpTimeout: *catchUp, Repair: *repair, Sample: *sample,
		Progress: progressPrinter(stderr)}
	if *chunkSize > 0 {
		vcfg.ChunkSize = *chunkSize
	}
	doc := verifyDoc{Equal: true, StartedAt: time.Now().UTC(), Collections: []verify.Report{}}
	for _, m := range selected {
		rep, err := verify.Collection(ctx, deps, m, vcfg)
		if err != nil {
			return capture.SourceError(cfg.Source.URI, err)
		}
		if r := rep.Repair; r != nil {
			// What the repair wrote is proven by a second verification;
			// its report replaces the first, with the repair kept.
			fmt.Fprintf(stderr, "verify %s: repaired: %d document(s) copied again (%d gone or not transformable), %d row(s) deleted, %d extra child row(s) without a document; verifying again\n",
				m.Namespace(), r.Documents, r.Skipped, r.Deleted, r.Unattributed)
			again := vcfg
			again.Repair = false
			if rep, err = verify.Collection(ctx, deps, m, again); err != nil {
				return capture.SourceError(cfg.Source.URI, err)
			}
			rep.Repair = r
		}
		doc.Collections = append(doc.Collections, rep)
		doc.Equal = doc.Equal && rep.Equal
	}
	doc.FinishedAt = time.Now().UTC()
	doc.Verdict = "PASS"
	if !doc.Equal {
		doc.Verdict = "FAIL"
	}
	if *format == formatJSON {
		err = writeJSON(stdout, doc)
	} else {
		err = writeVerifyText(stdout, doc)
	}
	if err != nil {
		return err
	}
	if !doc.Equal {
		var differ []string
		for _, r := range doc.Collections {
			if !r.Equal {
				differ = append(differ, r.Collection)
			}
		}
		return fmt.Errorf("FAIL: %d of %d collection(s) differ: %s", len(differ), len(doc.Collections), strings.Join(differ, ", "))
	}
	return nil
}

// selectMappings returns the mappings of the named collections, in the
// config's order; none named means all.
func selectMappings(cfg *config.Config, maps []*transform.Mapping, names []string) ([]*transform.Mapping, error) {
	if len(names) == 0 {
		return maps, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		if err := knownCollection(cfg, n); err != nil {
			return nil, err
		}
		want[n] = true
	}
	var out []*transform.Mapping
	for _, m := range maps {
		if want[m.Namespace()] {
			out = append(out, m)
		}
	}
	return out, nil
}

// progressPrinter reports documents read on w: at most every
// progressInterval, and once when a collection has been read.
func progressPrinter(w io.Writer) func(string, int64, bool) {
	var last time.Time
	return func(ns string, docs int64, done bool) {
		if !done && time.Since(last) < progressInterval {
			return
		}
		last = time.Now()
		state := "documents read so far"
		if done {
			state = "documents read, comparing"
		}
		fmt.Fprintf(w, "verify %s: %d %s\n", ns, docs, state)
	}
}
