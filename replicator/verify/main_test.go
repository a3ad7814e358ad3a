package verify_test

import (
	"testing"

	"github.com/mongopg/replicator/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
