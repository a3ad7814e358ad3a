package specrunner

import (
	"fmt"
	"strconv"
	"strings"
)

// SchemaVersion is the newest unified-format schema version this runner
// accepts. Files of a newer minor version, or another major version, are
// refused as the format requires; parts of the format that the accepted
// versions define but this runner does not implement fail the test using
// them.
const SchemaVersion = "1.23"

// Version is a major.minor.patch version; missing components are zero.
type Version [3]int

// ParseVersion parses "4", "4.2" or "4.2.1"; anything after a "-" (for
// pre-release builds such as "4.9.0-alpha4-271-g7d5cf02") is discarded, as
// are components beyond the third.
func ParseVersion(s string) (Version, error) {
	var v Version
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '-'); i >= 0 {
		s = s[:i]
	}
	if s == "" {
		return v, fmt.Errorf("empty version string")
	}
	parts := strings.Split(s, ".")
	for i := 0; i < len(parts) && i < 3; i++ {
		n, err := strconv.Atoi(parts[i])
		if err != nil || n < 0 {
			return v, fmt.Errorf("version %q: component %q is not a non-negative integer", s, parts[i])
		}
		v[i] = n
	}
	return v, nil
}

// Compare returns -1, 0 or +1 as v is less than, equal to or greater than w.
func (v Version) Compare(w Version) int {
	for i := range v {
		switch {
		case v[i] < w[i]:
			return -1
		case v[i] > w[i]:
			return 1
		}
	}
	return 0
}

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2]) }

// CheckSchemaVersion reports whether a file of schema version s can be run:
// same major version as SchemaVersion and not newer.
func CheckSchemaVersion(s string) error {
	fileV, err := ParseVersion(s)
	if err != nil {
		return fmt.Errorf("schemaVersion: %w", err)
	}
	ours, _ := ParseVersion(SchemaVersion)
	if fileV[0] != ours[0] || fileV.Compare(ours) > 0 {
		return fmt.Errorf("schemaVersion %s is not supported (runner supports %s)", s, SchemaVersion)
	}
	return nil
}
