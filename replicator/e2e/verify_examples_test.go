package e2e

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/replicator/verify"
)

// TestVerifyExamples: after every module of deploy/examples has been
// snapshotted and streamed (as TestExamples does), verify finds MongoDB
// and PostgreSQL equal in every mapped table: surrogate ids referenced by
// child tables, grandchildren by their parent's id, natural keys,
// row-level security, value maps.
func TestVerifyExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL, NATS and MongoDB")
	}
	for _, module := range exampleModules {
		t.Run(module, func(t *testing.T) {
			e := &example{t: t, module: module, dir: filepath.Join("..", "..", "deploy", "examples", module)}
			if err := bson.UnmarshalExtJSON([]byte(e.read("documents.json")), false, &e.docs); err != nil {
				t.Fatalf("documents.json: %v", err)
			}
			e.mongo = mongotest.New(t)
			e.pgURL = testenv.PostgresURL(t)
			e.super = testenv.Pool(t, e.pgURL)
			cfg := e.loadConfig(e.prepareTarget())
			mappings, err := cfg.Mappings()
			if err != nil {
				t.Fatal(err)
			}
			e.run(cfg)
			for _, m := range mappings {
				rep, err := verify.Collection(context.Background(), verify.Deps{Source: e.mongo.Client, Target: e.super}, m, verify.Config{ChunkSize: 2})
				if err != nil {
					t.Fatalf("verify %s: %v", m.Namespace(), err)
				}
				for _, tr := range rep.Tables {
					t.Logf("%s: %d documents; %s: %d rows expected, %d in PostgreSQL", m.Namespace(), rep.Documents, tr.Table, tr.ExpectedRows, tr.ActualRows)
				}
				if !rep.Equal {
					b, _ := json.MarshalIndent(rep, "", "  ")
					t.Errorf("verify %s: not equal:\n%s", m.Namespace(), b)
				}
			}
		})
	}
}
