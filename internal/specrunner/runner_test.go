package specrunner

import (
	"strings"
	"testing"

	"github.com/mongopg/replicator/internal/mongotest"
)

// selfTestFile is a small unified-format file whose tests exercise the
// runner's own checks: each test either must pass or must fail for a
// stated reason, whatever the backend. A runner that is too lenient (or
// too strict) fails here rather than hiding behind the spec files.
const selfTestFile = `{
  "description": "runner self-test",
  "schemaVersion": "1.7",
  "runOnRequirements": [{"minServerVersion": "4.0", "topologies": ["replicaset", "sharded"]}],
  "createEntities": [
    {"client": {"id": "client0", "observeEvents": ["commandStartedEvent"], "ignoreCommandMonitoringEvents": ["killCursors"], "useMultipleMongoses": false}},
    {"client": {"id": "globalClient", "useMultipleMongoses": false}},
    {"database": {"id": "database0", "client": "client0", "databaseName": "specrunner_selftest"}},
    {"collection": {"id": "collection0", "database": "database0", "collectionName": "coll0"}},
    {"database": {"id": "globalDatabase0", "client": "globalClient", "databaseName": "specrunner_selftest"}},
    {"collection": {"id": "globalCollection0", "database": "globalDatabase0", "collectionName": "coll0"}}
  ],
  "initialData": [{"collectionName": "coll0", "databaseName": "specrunner_selftest", "documents": [{"_id": 1}]}],
  "tests": [
    {"description": "PASS insert event and events",
     "operations": [
       {"name": "createChangeStream", "object": "collection0", "arguments": {"pipeline": []}, "saveResultAsEntity": "cs"},
       {"name": "insertOne", "object": "globalCollection0", "arguments": {"document": {"_id": 2, "x": 1}},
        "expectResult": {"insertedId": {"$$unsetOrMatches": 2}}},
       {"name": "iterateUntilDocumentOrError", "object": "cs",
        "expectResult": {"operationType": "insert", "ns": {"db": "specrunner_selftest", "coll": "coll0"}, "fullDocument": {"_id": 2, "x": 1}}}
     ],
     "expectEvents": [{"client": "client0", "ignoreExtraEvents": true, "events": [
       {"commandStartedEvent": {"command": {"aggregate": "coll0", "pipeline": [{"$changeStream": {}}]}, "commandName": "aggregate", "databaseName": "specrunner_selftest"}}
     ]}],
     "outcome": [{"collectionName": "coll0", "databaseName": "specrunner_selftest", "documents": [{"_id": 1}, {"_id": 2, "x": 1}]}]},
    {"description": "PASS server error assertions",
     "operations": [
       {"name": "createChangeStream", "object": "collection0", "arguments": {"pipeline": [{"$unsupported": "foo"}]},
        "expectError": {"isClientError": false, "errorCode": 40324}}
     ]},
    {"description": "FAIL wrong field value in event",
     "operations": [
       {"name": "createChangeStream", "object": "collection0", "arguments": {"pipeline": []}, "saveResultAsEntity": "cs"},
       {"name": "insertOne", "object": "globalCollection0", "arguments": {"document": {"_id": 3, "x": 1}}},
       {"name": "iterateUntilDocumentOrError", "object": "cs", "expectResult": {"fullDocument": {"_id": 3, "x": 2}}}
     ]},
    {"description": "FAIL nested extra field",
     "operations": [
       {"name": "createChangeStream", "object": "collection0", "arguments": {"pipeline": []}, "saveResultAsEntity": "cs"},
       {"name": "insertOne", "object": "globalCollection0", "arguments": {"document": {"_id": 4, "x": 1}}},
       {"name": "iterateUntilDocumentOrError", "object": "cs", "expectResult": {"fullDocument": {"_id": 4}}}
     ]},
    {"description": "FAIL expected error did not happen",
     "operations": [
       {"name": "insertOne", "object": "collection0", "arguments": {"document": {"_id": 5}}, "expectError": {"isError": true}}
     ]},
    {"description": "FAIL wrong error code",
     "operations": [
       {"name": "createChangeStream", "object": "collection0", "arguments": {"pipeline": [{"$unsupported": "foo"}]},
        "expectError": {"errorCode": 1}}
     ]},
    {"description": "FAIL unexpected error",
     "operations": [
       {"name": "createChangeStream", "object": "collection0", "arguments": {"pipeline": [{"$unsupported": "foo"}]}}
     ]},
    {"description": "FAIL extra event without ignoreExtraEvents",
     "operations": [
       {"name": "createChangeStream", "object": "collection0", "arguments": {"pipeline": []}, "saveResultAsEntity": "cs"},
       {"name": "insertOne", "object": "collection0", "arguments": {"document": {"_id": 6}}}
     ],
     "expectEvents": [{"client": "client0", "events": [
       {"commandStartedEvent": {"command": {"aggregate": "coll0"}}}
     ]}]},
    {"description": "FAIL event from an unobserved client",
     "operations": [
       {"name": "insertOne", "object": "globalCollection0", "arguments": {"document": {"_id": 7}}}
     ],
     "expectEvents": [{"client": "client0", "events": [
       {"commandStartedEvent": {"command": {"insert": "coll0"}}}
     ]}]},
    {"description": "FAIL unsupported operation",
     "operations": [{"name": "bulkWrite", "object": "collection0", "arguments": {"requests": []}}]},
    {"description": "FAIL unknown argument",
     "operations": [{"name": "insertOne", "object": "collection0", "arguments": {"document": {"_id": 8}, "bogus": 1}}]},
    {"description": "FAIL outcome differs",
     "operations": [],
     "outcome": [{"collectionName": "coll0", "databaseName": "specrunner_selftest", "documents": [{"_id": 1, "y": 1}]}]},
    {"description": "SKIP by requirement",
     "runOnRequirements": [{"maxServerVersion": "3.0"}],
     "operations": []}
  ]
}`

func TestRunnerSelfTest(t *testing.T) {
	f, err := ParseFile([]byte(selfTestFile))
	if err != nil {
		t.Fatal(err)
	}
	f.Name = "selftest.json"
	var r *Runner
	t.Cleanup(func() { // after the backend's cleanup, see runSpecFile
		if r != nil {
			r.Close()
		}
	})
	env := mongotest.New(t)
	info, err := DiscoverServer(t.Context(), env.Client)
	if err != nil {
		t.Fatal(err)
	}
	r, err = NewRunner(Config{URI: env.URI, Internal: env.Client, Server: info})
	if err != nil {
		t.Fatal(err)
	}
	if skip, reason, err := r.CheckFile(t.Context(), f); err != nil || skip {
		t.Fatalf("self-test file not runnable: %v %s", err, reason)
	}
	for i, test := range f.Tests {
		t.Run(test.Description, func(t *testing.T) {
			res := r.RunTest(t.Context(), f, i)
			want := map[string]Status{"PASS": Passed, "FAIL": Failed, "SKIP": Skipped}[strings.Fields(test.Description)[0]]
			if res.Status != want {
				t.Fatalf("status %s, want %s: %s", res.Status, want, res.Reason)
			}
			t.Logf("%s: %s", res.Status, res.Reason)
		})
	}
}

func TestParseSpecFilesUnsupportedFields(t *testing.T) {
	if _, err := ParseFile([]byte(`{"description": "x", "schemaVersion": "1.0", "tests": [], "bogus": 1}`)); err == nil {
		t.Error("unknown top-level field accepted")
	}
	if _, err := ParseFile([]byte(`{"description": "x", "schemaVersion": "1.0", "runOnRequirements": [{"nope": 1}], "tests": []}`)); err == nil {
		t.Error("unknown runOnRequirement field accepted")
	}
	f, err := ParseFile([]byte(`{"description": "x", "schemaVersion": "1.0", "tests": [{"description": "t", "operations": [], "expectLogMessages": []}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Tests[0].validate(); err == nil {
		t.Error("unsupported test field expectLogMessages accepted")
	}
}
