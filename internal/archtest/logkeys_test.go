package archtest

import (
	"regexp"
	"strings"
	"testing"
)

// TestOneLogKeyForErrors: every log call in product code names its error
// attribute "err", so a JSON log pipeline finds errors under one key.
func TestOneLogKeyForErrors(t *testing.T) {
	other := regexp.MustCompile(`\.(Debug|Info|Warn|Error)\([^\n]*"(error|e|cause_err)",\s*err\b`)
	productSources(t, func(path string, src []byte) {
		for i, line := range strings.Split(string(src), "\n") {
			if other.MatchString(line) {
				t.Errorf("%s:%d: log the error as \"err\", err", path, i+1)
			}
		}
	})
}
