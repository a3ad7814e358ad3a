package replicator

import (
	"errors"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

func TestOplogUnreadable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"no oplog (mongos)", fmt.Errorf("oplog headroom: %w", mongo.ErrNoDocuments), true},
		{"unauthorized", mongo.CommandError{Code: 13, Name: "Unauthorized"}, true},
		{"network", mongo.CommandError{Code: 6, Labels: []string{"NetworkError"}}, false},
		{"login refused", mongo.CommandError{Code: 18, Name: "AuthenticationFailed"}, false},
		{"pool cleared", mongo.CommandError{Wrapped: errors.New("connection pool for h was cleared because another operation failed with: …")}, false},
		{"other", errors.New("connection refused"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := oplogUnreadable(tc.err); got != tc.want {
				t.Fatalf("oplogUnreadable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
