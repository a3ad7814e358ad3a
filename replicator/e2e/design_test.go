package e2e

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/replicator/config"
)

// TestDesignExampleRuns: the YAML example of ARCHITECTURE.md runs as written,
// with only the URIs (and the data directory) changed, embedded NATS
// included.
func TestDesignExampleRuns(t *testing.T) {
	env := mongotest.New(t)
	if env.Real() {
		t.Skip("writes to the fixed database vuln")
	}
	raw, err := os.ReadFile("../config/testdata/design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pgURL := testenv.PostgresURL(t)
	yaml := strings.NewReplacer(
		"mongodb://127.0.0.1:27017/?replicaSet=rs0", env.URI,
		"postgres://postgres@127.0.0.1:5432/app", pgURL,
		"./replicator-data", filepath.Join(t.TempDir(), "data"),
	).Replace(string(raw))
	cfg, err := config.Parse([]byte(yaml), "design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	reg := prometheus.NewRegistry()
	go func() {
		done <- replicator.Run(ctx, cfg, replicator.Options{Capture: true, Apply: true, DisableHTTP: true, Registerer: reg,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	time.Sleep(2 * time.Second)
	tenant := bson.Binary{Subtype: 4, Data: []byte("0123456789abcdef")}
	d128, _ := bson.ParseDecimal128("9.8")
	_, err = env.Client.Database("vuln").Collection("advisories").InsertOne(ctx, bson.D{
		{Key: "_id", Value: "GHSA-1"}, {Key: "tenantId", Value: tenant}, {Key: "severity", Value: "critical"},
		{Key: "metrics", Value: bson.D{{Key: "cvss", Value: d128}}},
		{Key: "published", Value: bson.NewDateTimeFromTime(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))},
		{Key: "affected", Value: bson.A{bson.D{{Key: "purl", Value: "pkg:npm/a@1"}, {Key: "ranges", Value: bson.A{}}}}},
		{Key: "extra", Value: "kept in doc"},
	})
	if err != nil {
		t.Fatal(err)
	}
	pool := testenv.Pool(t, pgURL)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var cvss, doc, purl string
		err := pool.QueryRow(ctx, `SELECT a.cvss::text, a.doc::text, f.purl FROM vuln.advisories a JOIN vuln.advisory_affected f ON f.advisory_id = a.id WHERE a.id = 'GHSA-1'`).Scan(&cvss, &doc, &purl)
		if err == nil {
			if cvss != "9.8" || !strings.Contains(doc, "kept in doc") || purl != "pkg:npm/a@1" {
				t.Fatalf("row: cvss %s doc %s purl %s", cvss, doc, purl)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("row not replicated: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
