package specrunner

import (
	"fmt"
	"os"
	"path/filepath"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// File is one unified-format test file.
type File struct {
	// Name is the file's base name, e.g. "change-streams.json".
	Name string

	Description       string           `bson:"description"`
	SchemaVersion     string           `bson:"schemaVersion"`
	RunOnRequirements []Requirement    `bson:"runOnRequirements"`
	CreateEntities    []bson.Raw       `bson:"createEntities"`
	InitialData       []CollectionData `bson:"initialData"`
	Tests             []Test           `bson:"tests"`
}

// Requirement is one runOnRequirement object.
type Requirement struct {
	MinServerVersion string   `bson:"minServerVersion"`
	MaxServerVersion string   `bson:"maxServerVersion"`
	Topologies       []string `bson:"topologies"`
	Serverless       string   `bson:"serverless"`
	ServerParameters bson.Raw `bson:"serverParameters"`
	Auth             *bool    `bson:"auth"`
	AuthMechanism    string   `bson:"authMechanism"`
	CSFLE            *bool    `bson:"csfle"`
}

// CollectionData is a collectionData object (initialData, outcome).
type CollectionData struct {
	CollectionName string     `bson:"collectionName"`
	DatabaseName   string     `bson:"databaseName"`
	CreateOptions  bson.Raw   `bson:"createOptions"`
	Documents      []bson.Raw `bson:"documents"`
}

// Test is one test case of a file.
type Test struct {
	Description       string           `bson:"description"`
	RunOnRequirements []Requirement    `bson:"runOnRequirements"`
	SkipReason        string           `bson:"skipReason"`
	Operations        []Operation      `bson:"operations"`
	ExpectEvents      []ExpectedEvents `bson:"expectEvents"`
	Outcome           []CollectionData `bson:"outcome"`

	raw bson.Raw
}

// Operation is one operation of a test.
type Operation struct {
	Name                 string         `bson:"name"`
	Object               string         `bson:"object"`
	Arguments            bson.Raw       `bson:"arguments"`
	IgnoreResultAndError bool           `bson:"ignoreResultAndError"`
	ExpectError          *ExpectedError `bson:"expectError"`
	ExpectResult         *bson.RawValue `bson:"expectResult"`
	SaveResultAsEntity   string         `bson:"saveResultAsEntity"`

	raw bson.Raw
}

// ExpectedError is an expectedError object.
type ExpectedError struct {
	IsError            *bool          `bson:"isError"`
	IsClientError      *bool          `bson:"isClientError"`
	IsTimeoutError     *bool          `bson:"isTimeoutError"`
	ErrorContains      *string        `bson:"errorContains"`
	ErrorCode          *int32         `bson:"errorCode"`
	ErrorCodeName      *string        `bson:"errorCodeName"`
	ErrorLabelsContain []string       `bson:"errorLabelsContain"`
	ErrorLabelsOmit    []string       `bson:"errorLabelsOmit"`
	ErrorResponse      bson.Raw       `bson:"errorResponse"`
	ExpectResult       *bson.RawValue `bson:"expectResult"`

	raw bson.Raw
}

// ExpectedEvents is an expectedEventsForClient object.
type ExpectedEvents struct {
	Client            string     `bson:"client"`
	EventType         string     `bson:"eventType"`
	Events            []bson.Raw `bson:"events"`
	IgnoreExtraEvents bool       `bson:"ignoreExtraEvents"`
}

// Known keys of each structure. A key outside these lists is a part of the
// format this runner does not implement, and fails the test that uses it.
var (
	fileKeys = []string{"description", "schemaVersion", "runOnRequirements", "createEntities",
		"initialData", "tests", "_yamlAnchors"}
	testKeys = []string{"description", "runOnRequirements", "skipReason", "operations",
		"expectEvents", "outcome"}
	operationKeys = []string{"name", "object", "arguments", "ignoreResultAndError", "expectError",
		"expectResult", "saveResultAsEntity"}
	expectedErrorKeys = []string{"isError", "isClientError", "isTimeoutError", "errorContains",
		"errorCode", "errorCodeName", "errorLabelsContain", "errorLabelsOmit", "errorResponse", "expectResult"}
	requirementKeys = []string{"minServerVersion", "maxServerVersion", "topologies", "serverless",
		"serverParameters", "auth", "authMechanism", "csfle"}
)

// LoadFile reads and parses one test file (relaxed or canonical Extended
// JSON). It does not check the schema version; see CheckSchemaVersion.
func LoadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read spec file: %w", err)
	}
	f, err := ParseFile(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	f.Name = filepath.Base(path)
	return f, nil
}

// ParseFile parses the Extended JSON text of a test file.
func ParseFile(data []byte) (*File, error) {
	var raw bson.Raw
	if err := bson.UnmarshalExtJSON(data, false, &raw); err != nil {
		return nil, fmt.Errorf("parse extended JSON: %w", err)
	}
	if err := checkKeys(raw, "file", fileKeys); err != nil {
		return nil, err
	}
	if v, err := raw.LookupErr("runOnRequirements"); err == nil {
		if err := checkRequirementKeys(v); err != nil {
			return nil, err
		}
	}
	var f File
	if err := bson.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("decode test file: %w", err)
	}
	tests, err := raw.LookupErr("tests")
	if err != nil {
		return nil, fmt.Errorf("test file has no tests")
	}
	vals, err := tests.Array().Values()
	if err != nil {
		return nil, fmt.Errorf("tests: %w", err)
	}
	for i, v := range vals {
		doc, ok := v.DocumentOK()
		if !ok || i >= len(f.Tests) {
			return nil, fmt.Errorf("tests[%d] is not a document", i)
		}
		f.Tests[i].raw = doc
		if err := attachOperationRaw(doc, f.Tests[i].Operations); err != nil {
			return nil, fmt.Errorf("tests[%d]: %w", i, err)
		}
	}
	return &f, nil
}

func attachOperationRaw(test bson.Raw, ops []Operation) error {
	v, err := test.LookupErr("operations")
	if err != nil {
		return nil
	}
	vals, err := v.Array().Values()
	if err != nil {
		return fmt.Errorf("operations: %w", err)
	}
	for i, ov := range vals {
		doc, ok := ov.DocumentOK()
		if !ok || i >= len(ops) {
			return fmt.Errorf("operations[%d] is not a document", i)
		}
		ops[i].raw = doc
		if ops[i].ExpectError != nil {
			ops[i].ExpectError.raw = doc.Lookup("expectError").Document()
		}
	}
	return nil
}

// validate checks that a test uses only parts of the format this runner
// implements.
func (t *Test) validate() error {
	if err := checkKeys(t.raw, "test", testKeys); err != nil {
		return err
	}
	if v, err := t.raw.LookupErr("runOnRequirements"); err == nil {
		if err := checkRequirementKeys(v); err != nil {
			return err
		}
	}
	for i, op := range t.Operations {
		if err := checkKeys(op.raw, "operation", operationKeys); err != nil {
			return fmt.Errorf("operations[%d] %s: %w", i, op.Name, err)
		}
		if op.ExpectError != nil {
			if err := checkKeys(op.ExpectError.raw, "expectError", expectedErrorKeys); err != nil {
				return fmt.Errorf("operations[%d] %s: %w", i, op.Name, err)
			}
		}
	}
	return nil
}

// checkKeys returns an error naming the first key of doc outside allowed.
func checkKeys(doc bson.Raw, what string, allowed []string) error {
	elems, err := doc.Elements()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	for _, e := range elems {
		if !contains(allowed, e.Key()) {
			return fmt.Errorf("%s field %q is not supported by this runner", what, e.Key())
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
