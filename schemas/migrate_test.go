package schemas

import (
	"context"
	"sync"
	"testing"

	"github.com/mongopg/replicator/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestMigrationsAreNumberedInOrder(t *testing.T) {
	migs, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(migs) == 0 {
		t.Fatal("no embedded migrations")
	}
	for i := 1; i < len(migs); i++ {
		if migs[i].Version <= migs[i-1].Version {
			t.Errorf("migration versions %d and %d are not increasing", migs[i-1].Version, migs[i].Version)
		}
	}
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		run  func(t *testing.T, url string)
	}{
		{"fresh database, then again (idempotent)", func(t *testing.T, url string) {
			pool := testenv.Pool(t, url)
			applied, err := Upgrade(ctx, pool)
			if err != nil {
				t.Fatal(err)
			}
			if len(applied) == 0 {
				t.Fatal("nothing applied to a fresh database")
			}
			again, err := Upgrade(ctx, pool)
			if err != nil {
				t.Fatal(err)
			}
			if len(again) != 0 {
				t.Errorf("second run applied %v", again)
			}
		}},
		{"concurrent runners", func(t *testing.T, url string) {
			pool := testenv.Pool(t, url)
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Go(func() { errs[i] = Migrate(ctx, pool) })
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
		}},
		{"statements are idempotent even without the version table", func(t *testing.T, url string) {
			pool := testenv.Pool(t, url)
			if err := Migrate(ctx, pool); err != nil {
				t.Fatal(err)
			}
			if _, err := pool.Exec(ctx, `DELETE FROM replicator.schema_migrations`); err != nil {
				t.Fatal(err)
			}
			if err := Migrate(ctx, pool); err != nil {
				t.Fatalf("re-running every migration: %v", err)
			}
		}},
		{"a newer schema is refused", func(t *testing.T, url string) {
			pool := testenv.Pool(t, url)
			if err := Migrate(ctx, pool); err != nil {
				t.Fatal(err)
			}
			if _, err := pool.Exec(ctx, `INSERT INTO replicator.schema_migrations (version, name) VALUES (9999, 'future')`); err != nil {
				t.Fatal(err)
			}
			if err := Migrate(ctx, pool); err == nil {
				t.Fatal("migrating a database from a newer build succeeded")
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := testenv.PostgresURL(t)
			tc.run(t, url)
			pool := testenv.Pool(t, url)
			v, err := Current(ctx, pool)
			if err != nil {
				t.Fatal(err)
			}
			migs, _ := Migrations()
			if v < migs[len(migs)-1].Version {
				t.Errorf("current version %d", v)
			}
			for _, table := range []string{"apply_checkpoints", "tombstones", "dead_letters", "control_events", "schema_migrations"} {
				var ok bool
				if err := pool.QueryRow(ctx, `SELECT to_regclass('replicator.' || $1) IS NOT NULL`, table).Scan(&ok); err != nil || !ok {
					t.Errorf("table replicator.%s missing (%v)", table, err)
				}
			}
		})
	}
}

func TestCurrentOnEmptyDatabase(t *testing.T) {
	v, err := Current(context.Background(), testenv.Postgres(t))
	if err != nil || v != 0 {
		t.Fatalf("Current on an empty database: %d, %v", v, err)
	}
}
