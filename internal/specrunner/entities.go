package specrunner

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// entities is one test's entity map. Tests run their operations in order
// on one goroutine; only the event recorders of clients are touched by the
// driver's goroutines, and they lock themselves.
type entities struct {
	kinds    map[string]string // id -> kind, to keep ids unique across kinds
	clients  map[string]*clientEntity
	dbs      map[string]*mongo.Database
	colls    map[string]*mongo.Collection
	sessions map[string]*mongo.Session
	streams  map[string]*mongo.ChangeStream
	values   map[string]bson.RawValue
}

func newEntities() *entities {
	return &entities{
		kinds:    map[string]string{},
		clients:  map[string]*clientEntity{},
		dbs:      map[string]*mongo.Database{},
		colls:    map[string]*mongo.Collection{},
		sessions: map[string]*mongo.Session{},
		streams:  map[string]*mongo.ChangeStream{},
		values:   map[string]bson.RawValue{},
	}
}

func (e *entities) claim(id, kind string) error {
	if id == "" {
		return fmt.Errorf("%s entity without an id", kind)
	}
	if k, ok := e.kinds[id]; ok {
		return fmt.Errorf("entity %q already exists (a %s)", id, k)
	}
	e.kinds[id] = kind
	return nil
}

func (e *entities) kind(id string) string { return e.kinds[id] }

func (e *entities) client(id string) (*clientEntity, error) {
	c, ok := e.clients[id]
	if !ok {
		return nil, e.missing(id, "client")
	}
	return c, nil
}

func (e *entities) database(id string) (*mongo.Database, error) {
	d, ok := e.dbs[id]
	if !ok {
		return nil, e.missing(id, "database")
	}
	return d, nil
}

func (e *entities) session(id string) (*mongo.Session, error) {
	s, ok := e.sessions[id]
	if !ok {
		return nil, e.missing(id, "session")
	}
	return s, nil
}

func (e *entities) missing(id, want string) error {
	if k, ok := e.kinds[id]; ok {
		return fmt.Errorf("entity %q is a %s, not a %s", id, k, want)
	}
	return fmt.Errorf("no %s entity %q", want, id)
}

// bsonEntity and sessionLsid serve the matcher's entity operators.
func (e *entities) bsonEntity(id string) (bson.RawValue, error) {
	v, ok := e.values[id]
	if !ok {
		return bson.RawValue{}, e.missing(id, "BSON value")
	}
	return v, nil
}

func (e *entities) sessionLsid(id string) (bson.Raw, error) {
	s, err := e.session(id)
	if err != nil {
		return nil, err
	}
	return s.ID(), nil
}

// close releases everything the test created: change streams are closed
// and sessions ended (errors ignored, as the format asks for cursors), and
// clients are handed to disconnect.
func (e *entities) close(ctx context.Context, disconnect func(*mongo.Client)) {
	for _, cs := range e.streams {
		_ = cs.Close(ctx)
	}
	for _, s := range e.sessions {
		s.EndSession(ctx)
	}
	for _, c := range e.clients {
		disconnect(c.client)
	}
}

// createEntities creates the entities of a createEntities list in order.
//
// When the test configures fail points, clients poll the server every
// failPointHeartbeat instead of every 10s (unless their uriOptions set
// heartbeatFrequencyMS), as the format allows, so that a client that marked
// the server Unknown after an injected error finds it again quickly.
func (r *Runner) createEntities(ctx context.Context, e *entities, defs []bson.Raw, fastHeartbeat bool) error {
	for i, def := range defs {
		elems, err := def.Elements()
		if err != nil || len(elems) != 1 {
			return fmt.Errorf("createEntities[%d]: want exactly one entity type key", i)
		}
		kind := elems[0].Key()
		body, ok := elems[0].Value().DocumentOK()
		if !ok {
			return fmt.Errorf("createEntities[%d]: %s is not a document", i, kind)
		}
		id, _ := body.Lookup("id").StringValueOK()
		if err := e.claim(id, kind); err != nil {
			return fmt.Errorf("createEntities[%d]: %w", i, err)
		}
		switch kind {
		case "client":
			err = r.createClient(e, id, body, fastHeartbeat)
		case "database":
			err = createDatabase(e, id, body)
		case "collection":
			err = createCollection(e, id, body)
		case "session":
			err = createSession(e, id, body)
		default:
			err = fmt.Errorf("entity type %q is not supported by this runner", kind)
		}
		if err != nil {
			return fmt.Errorf("createEntities[%d] %s %q: %w", i, kind, id, err)
		}
	}
	return nil
}

func createDatabase(e *entities, id string, def bson.Raw) error {
	if err := checkKeys(def, "database", []string{"id", "client", "databaseName", "databaseOptions"}); err != nil {
		return err
	}
	clientID, _ := def.Lookup("client").StringValueOK()
	c, err := e.client(clientID)
	if err != nil {
		return err
	}
	name, ok := def.Lookup("databaseName").StringValueOK()
	if !ok {
		return fmt.Errorf("databaseName is required")
	}
	opts := options.Database()
	if o, ok := def.Lookup("databaseOptions").DocumentOK(); ok {
		rc, rp, wc, err := commonOptions(o)
		if err != nil {
			return fmt.Errorf("databaseOptions: %w", err)
		}
		if rc != nil {
			opts.SetReadConcern(rc)
		}
		if rp != nil {
			opts.SetReadPreference(rp)
		}
		if wc != nil {
			opts.SetWriteConcern(wc)
		}
	}
	e.dbs[id] = c.client.Database(name, opts)
	return nil
}

func createCollection(e *entities, id string, def bson.Raw) error {
	if err := checkKeys(def, "collection", []string{"id", "database", "collectionName", "collectionOptions"}); err != nil {
		return err
	}
	dbID, _ := def.Lookup("database").StringValueOK()
	db, err := e.database(dbID)
	if err != nil {
		return err
	}
	name, ok := def.Lookup("collectionName").StringValueOK()
	if !ok {
		return fmt.Errorf("collectionName is required")
	}
	opts := options.Collection()
	if o, ok := def.Lookup("collectionOptions").DocumentOK(); ok {
		rc, rp, wc, err := commonOptions(o)
		if err != nil {
			return fmt.Errorf("collectionOptions: %w", err)
		}
		if rc != nil {
			opts.SetReadConcern(rc)
		}
		if rp != nil {
			opts.SetReadPreference(rp)
		}
		if wc != nil {
			opts.SetWriteConcern(wc)
		}
	}
	e.colls[id] = db.Collection(name, opts)
	return nil
}

func createSession(e *entities, id string, def bson.Raw) error {
	if err := checkKeys(def, "session", []string{"id", "client", "sessionOptions"}); err != nil {
		return err
	}
	clientID, _ := def.Lookup("client").StringValueOK()
	c, err := e.client(clientID)
	if err != nil {
		return err
	}
	opts := options.Session()
	if o, ok := def.Lookup("sessionOptions").DocumentOK(); ok {
		if err := checkKeys(o, "sessionOptions", []string{"causalConsistency", "snapshot"}); err != nil {
			return err
		}
		if b, ok := o.Lookup("causalConsistency").BooleanOK(); ok {
			opts.SetCausalConsistency(b)
		}
		if b, ok := o.Lookup("snapshot").BooleanOK(); ok {
			opts.SetSnapshot(b)
		}
	}
	s, err := c.client.StartSession(opts)
	if err != nil {
		return err
	}
	e.sessions[id] = s
	return nil
}
