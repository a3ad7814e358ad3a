package capture

import (
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

func TestHistoryLostClassification(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"ChangeStreamHistoryLost", mongo.CommandError{Code: 286, Message: "Resume of change stream was not possible"}, true},
		{"older servers' fatal form", mongo.CommandError{Code: 280, Message: "Resume of change stream was not possible, as the resume point may no longer be in the oplog."}, true},
		{"token not found", mongo.CommandError{Code: 280, Message: "cannot resume stream; the resume token was not found. {_data: \"82...\"}"}, true},
		{"other fatal change-stream error", mongo.CommandError{Code: 280, Message: "the change stream cannot be resumed: unsupported stage"}, false},
		{"invalid resume token", mongo.CommandError{Code: 260, Message: "invalid resume token"}, false},
		{"not a server error", errors.New("no longer be in the oplog"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := historyLost(tc.err); got != tc.want {
				t.Fatalf("historyLost(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
