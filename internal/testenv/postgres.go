package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mongopg/replicator/internal/pgserver"
)

// EnvPostgresURL names an existing server tests use instead of a private one.
const EnvPostgresURL = "REPLICATOR_TEST_PG_URL"

var shared struct {
	once sync.Once
	srv  *pgserver.Server
	dir  string
	base string // URL of the maintenance database
	err  error
}

func sharedBaseURL() (string, error) {
	shared.once.Do(func() {
		if u := os.Getenv(EnvPostgresURL); u != "" {
			shared.base = u
			return
		}
		dir, err := os.MkdirTemp("", "replicator-pg-")
		if err != nil {
			shared.err = err
			return
		}
		shared.dir = dir
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		srv, err := pgserver.Start(ctx, pgserver.Options{Dir: dir})
		if err != nil {
			shared.err = err
			return
		}
		shared.srv = srv
		shared.base = srv.URL("postgres")
	})
	return shared.base, shared.err
}

// Main runs the tests and then stops the shared PostgreSQL server and
// removes its files. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		_ = shared.srv.Stop()
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// PostgresURL returns the URL of a fresh, empty database on a real
// PostgreSQL server. The database is dropped when the test ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base, err := sharedBaseURL()
	if err != nil {
		t.Fatalf("testenv: PostgreSQL: %v", err)
	}
	return createDatabase(t, base)
}

// Postgres returns a pool on a fresh database (see PostgresURL), closed when
// the test ends.
func Postgres(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return Pool(t, PostgresURL(t))
}

// Pool opens a pool on url, closed when the test ends.
func Pool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatalf("testenv: pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// PostgresServer is a private server owned by one test, which may stop,
// kill and restart it.
type PostgresServer struct {
	*pgserver.Server
	t testing.TB
}

// NewPostgresServer starts a private server for this test only, stopped
// when the test ends. It ignores REPLICATOR_TEST_PG_URL: tests that restart
// the server need one of their own.
func NewPostgresServer(t testing.TB) *PostgresServer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := pgserver.Start(ctx, pgserver.Options{Dir: tempDir(t)})
	if err != nil {
		t.Fatalf("testenv: PostgreSQL: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	return &PostgresServer{Server: srv, t: t}
}

// Database creates a fresh database on this server and returns its URL.
func (s *PostgresServer) Database() string {
	s.t.Helper()
	return createDatabase(s.t, s.URL("postgres"))
}

// tempDir is a temporary directory removed at cleanup even when a server
// running as another user wrote files into it.
func tempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "replicator-test-")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func createDatabase(t testing.TB, base string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("testenv: connect %s: %v", redact(base), err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testenv: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			return // the server is gone; its directory goes with it
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("testenv: %s: %v", EnvPostgresURL, err)
	}
	u.Path = "/" + name
	return u.String()
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
