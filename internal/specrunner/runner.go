package specrunner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

// Config tells a Runner where the server is.
type Config struct {
	// URI is the connection string client entities are created from.
	URI string
	// Internal is the internal client: it sets up initialData, checks
	// outcome and asks the server for its version, topology and
	// parameters. It is not closed by the Runner.
	Internal *mongo.Client
	// Server describes the deployment; see DiscoverServer.
	Server ServerInfo
	// IterateTimeout bounds one iterateUntilDocumentOrError (default
	// 10s); running out of it fails the test. TestTimeout bounds one test
	// (default 2 minutes). Both cancel the operation's context without
	// giving it a deadline; see cancelAfter.
	IterateTimeout time.Duration
	TestTimeout    time.Duration
}

// Runner runs tests of unified-format files. Close it when done.
type Runner struct {
	cfg Config

	// disconnects tracks clients of finished tests still disconnecting.
	// The driver's Disconnect waits for its monitor's awaitable hello,
	// which a server may hold for the whole heartbeat interval, so tests
	// do not wait for it; Close does.
	disconnects sync.WaitGroup
}

// Close waits until every client entity the Runner created is
// disconnected.
func (r *Runner) Close() {
	r.disconnects.Wait()
}

func (r *Runner) disconnect(c *mongo.Client) {
	r.disconnects.Add(1)
	go func() {
		defer r.disconnects.Done()
		// Bounded: when the server has gone away first, Disconnect's
		// endSessions and pool close would otherwise wait for server
		// selection.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Disconnect(ctx)
	}()
}

// NewRunner returns a Runner for cfg.
func NewRunner(cfg Config) (*Runner, error) {
	if cfg.URI == "" || cfg.Internal == nil {
		return nil, errors.New("specrunner: Config needs URI and Internal")
	}
	if cfg.IterateTimeout <= 0 {
		cfg.IterateTimeout = 10 * time.Second
	}
	if cfg.TestTimeout <= 0 {
		cfg.TestTimeout = 2 * time.Minute
	}
	if cfg.Server.client == nil {
		cfg.Server.client = cfg.Internal
	}
	return &Runner{cfg: cfg}, nil
}

// Status is a test's outcome.
type Status int

// Test outcomes.
const (
	Passed Status = iota
	Failed
	Skipped
)

func (s Status) String() string {
	return [...]string{"passed", "failed", "skipped"}[s]
}

// Result is the outcome of one test.
type Result struct {
	Status Status
	// Reason is why the test was skipped, or what failed.
	Reason string
}

// CheckFile reports whether a file can run at all: its schema version is
// supported (else err) and its runOnRequirements are met (else skip with
// reason).
func (r *Runner) CheckFile(ctx context.Context, f *File) (skip bool, reason string, err error) {
	if err := CheckSchemaVersion(f.SchemaVersion); err != nil {
		return false, "", err
	}
	ok, why, err := r.cfg.Server.Satisfied(ctx, f.RunOnRequirements)
	if err != nil {
		return false, "", fmt.Errorf("runOnRequirements: %w", err)
	}
	return !ok, why, nil
}

// cancelAfter is context.WithTimeout without a deadline: the context is
// cancelled after d, but the driver does not see a deadline, so it neither
// adds maxTimeMS to commands nor switches to its timeout-driven retry
// policy. Commands stay as a driver configured without timeouts sends
// them, which is what the spec files describe.
func cancelAfter(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(d, cancel)
	return ctx, func() {
		timer.Stop()
		cancel()
	}
}

// failPoint is a fail point a test configured, to be turned off after it.
type failPoint struct {
	client *clientEntity
	name   string
}

// testState is everything one test created.
type testState struct {
	entities   *entities
	failPoints []failPoint
}

// RunTest runs test i of f; the file-level requirements must have been
// checked with CheckFile.
func (r *Runner) RunTest(ctx context.Context, f *File, i int) Result {
	t := &f.Tests[i]
	if err := t.validate(); err != nil {
		return Result{Status: Failed, Reason: err.Error()}
	}
	if t.SkipReason != "" {
		return Result{Status: Skipped, Reason: "skipReason: " + t.SkipReason}
	}
	ctx, cancel := cancelAfter(ctx, r.cfg.TestTimeout)
	defer cancel()
	ok, why, err := r.cfg.Server.Satisfied(ctx, t.RunOnRequirements)
	if err != nil {
		return Result{Status: Failed, Reason: fmt.Sprintf("runOnRequirements: %v", err)}
	}
	if !ok {
		return Result{Status: Skipped, Reason: why}
	}
	if err := r.run(ctx, f, t); err != nil {
		return Result{Status: Failed, Reason: err.Error()}
	}
	return Result{Status: Passed}
}

func (r *Runner) run(ctx context.Context, f *File, t *Test) (err error) {
	if err := r.loadInitialData(ctx, f.InitialData); err != nil {
		return fmt.Errorf("initialData: %w", err)
	}
	st := &testState{entities: newEntities()}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if ferr := r.disableFailPoints(cctx, st); ferr != nil && err == nil {
			err = ferr
		}
		st.entities.close(cctx, r.disconnect)
	}()
	if err := r.createEntities(ctx, st.entities, f.CreateEntities, usesFailPoints(t.Operations)); err != nil {
		return err
	}
	for _, c := range st.entities.clients {
		c.setListening(true)
	}
	opErr := r.runOperations(ctx, st, t.Operations)
	for _, c := range st.entities.clients {
		c.setListening(false)
	}
	if opErr != nil {
		return opErr
	}
	if err := r.disableFailPoints(ctx, st); err != nil {
		return err
	}
	for _, exp := range t.ExpectEvents {
		if err := verifyEvents(st.entities, exp); err != nil {
			return fmt.Errorf("expectEvents: %w", err)
		}
	}
	for _, out := range t.Outcome {
		if err := r.checkOutcome(ctx, out); err != nil {
			return fmt.Errorf("outcome: %w", err)
		}
	}
	return nil
}

func usesFailPoints(ops []Operation) bool {
	for _, op := range ops {
		if op.Object == "testRunner" && (op.Name == "failPoint" || op.Name == "targetedFailPoint") {
			return true
		}
	}
	return false
}

func (r *Runner) runOperations(ctx context.Context, st *testState, ops []Operation) error {
	m := matcher{entities: st.entities}
	for i, op := range ops {
		res, err := r.execute(ctx, st, op)
		if err != nil {
			return fmt.Errorf("operations[%d] %s on %s: %w", i, op.Name, op.Object, err)
		}
		if op.IgnoreResultAndError {
			continue
		}
		if op.ExpectError != nil {
			if err := checkError(m, op.ExpectError, res.err); err != nil {
				return fmt.Errorf("operations[%d] %s on %s: expectError: %w", i, op.Name, op.Object, err)
			}
			continue
		}
		if res.err != nil {
			return fmt.Errorf("operations[%d] %s on %s: unexpected error: %w%s", i, op.Name, op.Object, res.err, errorReply(res.err))
		}
		if op.ExpectResult != nil {
			if res.value.Type == 0 {
				return fmt.Errorf("operations[%d] %s on %s: expectResult given but the operation returns no BSON result", i, op.Name, op.Object)
			}
			if err := m.match("", *op.ExpectResult, res.value, true); err != nil {
				return fmt.Errorf("operations[%d] %s on %s: expectResult: %w\nactual: %s", i, op.Name, op.Object, err, relaxed(res.value))
			}
		}
		if op.SaveResultAsEntity != "" {
			if err := st.entities.save(op.SaveResultAsEntity, res); err != nil {
				return fmt.Errorf("operations[%d] %s on %s: saveResultAsEntity: %w", i, op.Name, op.Object, err)
			}
		}
	}
	return nil
}

// save stores an operation's result under id.
func (e *entities) save(id string, res opResult) error {
	switch v := res.entity.(type) {
	case *mongo.ChangeStream:
		if err := e.claim(id, "changeStream"); err != nil {
			_ = v.Close(context.Background())
			return err
		}
		e.streams[id] = v
		return nil
	case nil:
	default:
		return fmt.Errorf("result of type %T cannot be saved", v)
	}
	if res.value.Type == 0 {
		return fmt.Errorf("the operation returned no result to save")
	}
	if err := e.claim(id, "bson"); err != nil {
		return err
	}
	e.values[id] = res.value
	return nil
}

// errorReply renders the server reply of an error, for failure messages.
func errorReply(err error) string {
	d, ok := serverDetails(err)
	if !ok || d.raw == nil {
		return ""
	}
	return "\nserver reply: " + relaxedDoc(d.raw)
}

func (r *Runner) disableFailPoints(ctx context.Context, st *testState) error {
	var first error
	for _, fp := range st.failPoints {
		err := fp.client.client.Database("admin").RunCommand(ctx,
			bson.D{{Key: "configureFailPoint", Value: fp.name}, {Key: "mode", Value: "off"}},
			options.RunCmd().SetReadPreference(readpref.Primary())).Err()
		if err != nil && first == nil {
			first = fmt.Errorf("disable fail point %s: %w", fp.name, err)
		}
	}
	st.failPoints = nil
	return first
}

// loadInitialData drops, creates and fills each collection with the
// internal client and a majority write concern.
func (r *Runner) loadInitialData(ctx context.Context, data []CollectionData) error {
	for _, cd := range data {
		db := r.cfg.Internal.Database(cd.DatabaseName, options.Database().SetWriteConcern(writeconcern.Majority()))
		coll := db.Collection(cd.CollectionName)
		if err := coll.Drop(ctx); err != nil {
			return fmt.Errorf("drop %s.%s: %w", cd.DatabaseName, cd.CollectionName, err)
		}
		if len(cd.CreateOptions) > 0 || len(cd.Documents) == 0 {
			cmd := bson.D{{Key: "create", Value: cd.CollectionName}}
			elems, _ := cd.CreateOptions.Elements()
			for _, e := range elems {
				cmd = append(cmd, bson.E{Key: e.Key(), Value: e.Value()})
			}
			cmd = append(cmd, bson.E{Key: "writeConcern", Value: bson.D{{Key: "w", Value: "majority"}}})
			if err := db.RunCommand(ctx, cmd).Err(); err != nil {
				return fmt.Errorf("create %s.%s: %w", cd.DatabaseName, cd.CollectionName, err)
			}
		}
		if len(cd.Documents) > 0 {
			docs := make([]any, len(cd.Documents))
			for i, d := range cd.Documents {
				docs[i] = d
			}
			if _, err := coll.InsertMany(ctx, docs); err != nil {
				return fmt.Errorf("insert into %s.%s: %w", cd.DatabaseName, cd.CollectionName, err)
			}
		}
	}
	return nil
}

// checkOutcome asserts a collection holds exactly the expected documents.
func (r *Runner) checkOutcome(ctx context.Context, cd CollectionData) error {
	if len(cd.CreateOptions) > 0 {
		return fmt.Errorf("outcome createOptions is not allowed")
	}
	coll := r.cfg.Internal.Database(cd.DatabaseName).Collection(cd.CollectionName,
		options.Collection().SetReadPreference(readpref.Primary()))
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return fmt.Errorf("find %s.%s: %w", cd.DatabaseName, cd.CollectionName, err)
	}
	var got []bson.Raw
	if err := cur.All(ctx, &got); err != nil {
		return fmt.Errorf("find %s.%s: %w", cd.DatabaseName, cd.CollectionName, err)
	}
	if len(got) != len(cd.Documents) {
		return fmt.Errorf("%s.%s: expected %d documents, found %d", cd.DatabaseName, cd.CollectionName, len(cd.Documents), len(got))
	}
	for i := range got {
		if !sameDocument(cd.Documents[i], got[i]) {
			return fmt.Errorf("%s.%s: document %d: expected %s, found %s", cd.DatabaseName, cd.CollectionName, i,
				relaxedDoc(cd.Documents[i]), relaxedDoc(got[i]))
		}
	}
	return nil
}

// sameDocument compares two documents exactly, ignoring key order.
func sameDocument(a, b bson.Raw) bool {
	ae, err1 := a.Elements()
	be, err2 := b.Elements()
	if err1 != nil || err2 != nil || len(ae) != len(be) {
		return false
	}
	for _, e := range ae {
		v, err := b.LookupErr(e.Key())
		if err != nil || !sameValue(e.Value(), v) {
			return false
		}
	}
	return true
}

func sameValue(a, b bson.RawValue) bool {
	if a.Type != b.Type {
		return false
	}
	switch a.Type {
	case bson.TypeEmbeddedDocument:
		return sameDocument(a.Document(), b.Document())
	case bson.TypeArray:
		av, _ := a.Array().Values()
		bv, _ := b.Array().Values()
		if len(av) != len(bv) {
			return false
		}
		for i := range av {
			if !sameValue(av[i], bv[i]) {
				return false
			}
		}
		return true
	}
	return valuesEqual(a, b)
}
