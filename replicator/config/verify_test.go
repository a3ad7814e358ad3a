package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const verifyColls = `collections:
  - {source: app.users, table: app.users}
  - {source: app.orders, table: app.orders}
  - {source: shop.items, table: shop.items}
`

// TestVerifySection: the verify section's keys are read as written, and
// verify.collections chooses the collections and their order; without
// it every configured collection is verified, in file order.
func TestVerifySection(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"all by default", verifyColls + "verify: {enabled: true}\n", []string{"app.users", "app.orders", "shop.items"}},
		{"an empty list is all", verifyColls + "verify: {enabled: true, collections: []}\n", []string{"app.users", "app.orders", "shop.items"}},
		{"chosen, in the listed order", verifyColls + "verify:\n  enabled: true\n  collections: [shop.items, app.users]\n", []string{"shop.items", "app.users"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.src), "v.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if !c.Verify.Enabled {
				t.Error("verify.enabled: true not read")
			}
			if got := c.VerifyCollections(); !slices.Equal(got, tt.want) {
				t.Errorf("VerifyCollections() = %v, want %v", got, tt.want)
			}
		})
	}
	c, err := Parse([]byte(verifyColls+"verify: {enabled: true, interval: 90s, rate: 250.5, max_differences: 7}\n"), "v.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := VerifyConfig{Enabled: true, Interval: 90 * time.Second, Rate: 250.5, MaxDifferences: 7}
	if got := c.Verify; got.Enabled != want.Enabled || got.Interval != want.Interval || got.Rate != want.Rate || got.MaxDifferences != want.MaxDifferences {
		t.Errorf("verify section %+v, want %+v", got, want)
	}
}

// TestVerifyProblems: every problem of the verify section is reported at
// once, each at its key's file position; an unknown collection is named
// with the configured ones.
func TestVerifyProblems(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"every value at once", verifyColls + `verify:
  enabled: true
  interval: -1s
  rate: -5
  max_differences: -1
  collections: [app.users, app.nope, app.users]
`, []string{
			"bad.yaml:7:13: verify.interval: must be positive",
			"bad.yaml:8:9: verify.rate: -5: want a positive number of documents per second",
			"bad.yaml:9:20: verify.max_differences: must be positive",
			`bad.yaml:10:28: verify.collections[1]: "app.nope" is not a configured collection (configured: app.users, app.orders, shop.items)`,
			`bad.yaml:10:38: verify.collections[2]: "app.users" is already listed at verify.collections[0]`,
		}},
		{"infinite rate", verifyColls + "verify: {rate: .inf}\n", []string{"bad.yaml:5:16: verify.rate: +Inf: want a positive number of documents per second"}},
		{"not a number", verifyColls + "verify: {rate: fast}\n", []string{"bad.yaml:5:16: verify.rate: cannot unmarshal !!str `fast` into float64"}},
		{"unknown key", verifyColls + "verify: {enable: true}\n", []string{"bad.yaml:5:10: verify.enable: unknown key (known: collections, enabled, interval, max_differences, rate)"}},
		{"a disabled section is checked too", verifyColls + "verify: {collections: [other.coll]}\n", []string{`bad.yaml:5:24: verify.collections[0]: "other.coll" is not a configured collection`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src), "bad.yaml")
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in:\n%v", w, err)
				}
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != len(tt.want) {
				t.Errorf("%d problems, want %d:\n%v", n, len(tt.want), err)
			}
		})
	}
}

// TestComposeConfig: the compose stack's config, which turns continuous
// verification on, loads.
func TestComposeConfig(t *testing.T) {
	t.Setenv(EnvSourceURI, "")
	t.Setenv(EnvTargetURL, "")
	t.Setenv(EnvBufferNATSURL, "")
	c, err := Load("../../deploy/compose/replicator.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Verify.Enabled || c.Verify.Interval != 10*time.Minute || c.Verify.Rate != 1000 {
		t.Errorf("verify section %+v", c.Verify)
	}
	if got := c.VerifyCollections(); !slices.Equal(got, []string{"vuln.advisories"}) {
		t.Errorf("VerifyCollections() = %v", got)
	}
}
