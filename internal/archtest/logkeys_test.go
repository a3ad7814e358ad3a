package archtest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestOneLogKeyForErrors: every log call in product code names its error
// attribute "err", so a JSON log pipeline finds errors under one key.
func TestOneLogKeyForErrors(t *testing.T) {
	other := regexp.MustCompile(`\.(Debug|Info|Warn|Error)\([^\n]*"(error|e|cause_err)",\s*err\b`)
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "internal") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if other.MatchString(line) {
				t.Errorf("%s:%d: log the error as \"err\", err", path, i+1)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
