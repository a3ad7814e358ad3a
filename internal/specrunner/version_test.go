package specrunner

import "testing"

func TestParseVersion(t *testing.T) {
	cases := []struct {
		in   string
		want Version
	}{
		{"4", Version{4, 0, 0}},
		{"4.2", Version{4, 2, 0}},
		{"4.2.99", Version{4, 2, 99}},
		{"4.9.0-alpha4-271-g7d5cf02", Version{4, 9, 0}},
		{"8.0.1.2", Version{8, 0, 1}},
	}
	for _, c := range cases {
		got, err := ParseVersion(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseVersion(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "x", "4.a"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) accepted", bad)
		}
	}
	a, _ := ParseVersion("4.0.10")
	b, _ := ParseVersion("4.0.9")
	if a.Compare(b) <= 0 {
		t.Error("4.0.10 should be greater than 4.0.9 (numeric comparison)")
	}
}

func TestCheckSchemaVersion(t *testing.T) {
	for _, ok := range []string{"1.0", "1.4", "1.7", SchemaVersion} {
		if err := CheckSchemaVersion(ok); err != nil {
			t.Errorf("CheckSchemaVersion(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"1.99", "2.0", "0.9"} {
		if err := CheckSchemaVersion(bad); err == nil {
			t.Errorf("CheckSchemaVersion(%q) accepted", bad)
		}
	}
}

func TestRequirements(t *testing.T) {
	v, _ := ParseVersion("8.0.0")
	s := ServerInfo{Version: v, Topology: TopologyReplicaSet}
	cases := []struct {
		name string
		reqs []Requirement
		ok   bool
	}{
		{"none", nil, true},
		{"min met", []Requirement{{MinServerVersion: "6.0.0"}}, true},
		{"min unmet", []Requirement{{MinServerVersion: "8.1.0"}}, false},
		{"max unmet", []Requirement{{MaxServerVersion: "4.2.99"}}, false},
		{"max inclusive", []Requirement{{MaxServerVersion: "8.0"}}, true},
		{"topology", []Requirement{{Topologies: []string{"sharded", "replicaset"}}}, true},
		{"topology unmet", []Requirement{{Topologies: []string{"single"}}}, false},
		{"serverless forbid", []Requirement{{Serverless: "forbid"}}, true},
		{"serverless require", []Requirement{{Serverless: "require"}}, false},
		{"any of", []Requirement{{MinServerVersion: "8.2.1"}, {MinServerVersion: "6.1.0", MaxServerVersion: "8.1.99"}}, true},
		{"csfle", []Requirement{{CSFLE: ptr(true)}}, false},
		{"auth false", []Requirement{{Auth: ptr(false)}}, true},
	}
	for _, c := range cases {
		ok, reason, err := s.Satisfied(t.Context(), c.reqs)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if ok != c.ok {
			t.Errorf("%s: ok = %v (%s), want %v", c.name, ok, reason, c.ok)
		}
		if !ok && reason == "" {
			t.Errorf("%s: unmet without a reason", c.name)
		}
	}
}

func ptr[T any](v T) *T { return &v }
