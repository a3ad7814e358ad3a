package catalog

import (
	"context"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/transform"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const mappingYAML = `
source: vuln.advisories
table: vuln.advisories
key: [id]
columns:
  id:           { path: _id,        type: text }
  tenant_id:    { path: tenantId,   type: uuid, required: true }
  severity:     { path: severity,   type: varchar(16) }
  cvss:         { path: metrics.cvss, type: "numeric(4,1)" }
  published_at: { path: published,  type: timestamptz }
document: { column: doc, include: rest }
children:
  - path: affected
    table: vuln.advisory_affected
    parent_key: advisory_id
    columns:
      purl:   { path: purl,   type: text }
      count:  { path: n, type: integer }
`

func mapping(t *testing.T) *transform.Mapping {
	t.Helper()
	var cfg transform.CollectionConfig
	if err := yaml.Unmarshal([]byte(mappingYAML), &cfg); err != nil {
		t.Fatal(err)
	}
	m, err := transform.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCompare(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	m := mapping(t)
	ddl := transform.DDL([]*transform.Mapping{m})
	tests := []struct {
		name  string
		alter string
		want  []string
	}{
		{name: "generated schema matches"},
		{
			name:  "wider types are accepted",
			alter: `ALTER TABLE vuln.advisories ALTER severity TYPE text, ALTER cvss TYPE numeric; ALTER TABLE vuln.advisory_affected ALTER count TYPE bigint`,
		},
		{
			name:  "extra nullable column is fine",
			alter: `ALTER TABLE vuln.advisories ADD note text, ADD made_at timestamptz NOT NULL DEFAULT now()`,
		},
		{
			name:  "missing table",
			alter: `DROP TABLE vuln.advisory_affected`,
			want:  []string{"vuln.advisory_affected: table does not exist"},
		},
		{
			name:  "missing column and hidden column",
			alter: `ALTER TABLE vuln.advisories DROP COLUMN severity, DROP COLUMN _cdc_seq`,
			want: []string{
				"vuln.advisories.severity: column does not exist (want varchar(16))",
				"vuln.advisories._cdc_seq: hidden version column is missing",
			},
		},
		{
			name:  "incompatible types",
			alter: `ALTER TABLE vuln.advisories ALTER cvss TYPE integer, ALTER published_at TYPE timestamp, ALTER severity TYPE varchar(4), ALTER doc TYPE json`,
			want: []string{
				"vuln.advisories.severity: type character varying(4) cannot hold the mapped varchar(16) values",
				"vuln.advisories.cvss: type integer cannot hold the mapped numeric(4,1) values",
				"vuln.advisories.published_at: type timestamp without time zone cannot hold the mapped timestamptz values",
				"vuln.advisories.doc: type json cannot hold the mapped jsonb values",
			},
		},
		{
			name:  "primary key",
			alter: `ALTER TABLE vuln.advisory_affected DROP CONSTRAINT advisory_affected_pkey; ALTER TABLE vuln.advisory_affected ADD PRIMARY KEY (ordinal, advisory_id)`,
			want:  []string{"vuln.advisory_affected: primary key is (ordinal, advisory_id), want (advisory_id, ordinal)"},
		},
		{
			name:  "no primary key",
			alter: `ALTER TABLE vuln.advisory_affected DROP CONSTRAINT advisory_affected_pkey`,
			want:  []string{"vuln.advisory_affected: no primary key (want PRIMARY KEY (advisory_id, ordinal))"},
		},
		{
			name:  "not null",
			alter: `ALTER TABLE vuln.advisories ALTER severity SET NOT NULL, ADD owner text NOT NULL`,
			want: []string{
				"vuln.advisories.severity: column is NOT NULL but the mapping may write NULL",
				"vuln.advisories.owner: column is NOT NULL without a default and the mapping never writes it",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			pool := testenv.Postgres(t)
			if _, err := pool.Exec(ctx, ddl); err != nil {
				t.Fatal(err)
			}
			if tt.alter != "" {
				if _, err := pool.Exec(ctx, tt.alter); err != nil {
					t.Fatal(err)
				}
			}
			ps, err := Compare(ctx, pool, m.Tables())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.String())
			}
			all := strings.Join(got, "\n")
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("missing %q in:\n%s", w, all)
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n%s", len(got), len(tt.want), all)
			}
		})
	}
}
