package specrunner

import (
	"net/url"
	"strings"
	"testing"
)

func TestWithURIOptions(t *testing.T) {
	opts := ext(t, `{"appname": "x", "retryReads": false, "heartbeatFrequencyMS": 500, "REPLICASET": "rs1"}`).Document()
	got, err := withURIOptions("mongodb://127.0.0.1:1/?replicaSet=rs0&w=1", opts)
	if err != nil {
		t.Fatal(err)
	}
	_, query, _ := strings.Cut(got, "?")
	q, _ := url.ParseQuery(query)
	want := map[string]string{"appname": "x", "retryReads": "false", "heartbeatFrequencyMS": "500", "REPLICASET": "rs1", "w": "1"}
	if len(q) != len(want) {
		t.Fatalf("options %v, want %v", q, want)
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q (uri %s)", k, q.Get(k), v, got)
		}
	}
	direct, err := withURIOptions("mongodb://h:1/?replicaSet=rs0", ext(t, `{"directConnection": true}`).Document())
	if err != nil || strings.Contains(direct, "replicaSet") || !strings.Contains(direct, "directConnection=true") {
		t.Errorf("directConnection: %q, %v", direct, err)
	}
	if got := singleHost("mongodb://u:p@a:1,b:2/db?x=1"); got != "mongodb://u:p@a:1/db?x=1" {
		t.Errorf("singleHost = %q", got)
	}
	if got, _ := withURIOptions("mongodb://a:1", ext(t, `{"w": 2}`).Document()); got != "mongodb://a:1/?w=2" {
		t.Errorf("no path: %q", got)
	}
}
