package mongoemu_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongopg/replicator/internal/mongoemu"
)

func setFailPoint(t *testing.T, cl *mongo.Client, mode any, data D) {
	t.Helper()
	mustNoErr(t, cl.Database("admin").RunCommand(ctxT(t), D{{"configureFailPoint", "failCommand"}, {"mode", mode}, {"data", data}}).Err())
	t.Cleanup(func() {
		_ = cl.Database("admin").RunCommand(context.Background(), D{{"configureFailPoint", "failCommand"}, {"mode", "off"}}).Err()
	})
}

func TestFailCommand(t *testing.T) {
	srv, cl := startServer(t, mongoemu.Options{})
	ctx := context.Background()
	coll := cl.Database("db").Collection("fp")

	t.Run("times with errorCode and labels", func(t *testing.T) {
		setFailPoint(t, cl, D{{"times", 1}}, D{{"failCommands", A{"find"}}, {"errorCode", 2}, {"errorLabels", A{"MyLabel"}}})
		err := coll.FindOne(ctx, D{}).Err()
		var se mongo.ServerError
		if !errors.As(err, &se) || !se.HasErrorCode(2) || !se.HasErrorLabel("MyLabel") {
			t.Fatalf("err %v", err)
		}
		if err := coll.FindOne(ctx, D{}).Err(); !errors.Is(err, mongo.ErrNoDocuments) {
			t.Fatalf("second find: %v", err)
		}
	})
	t.Run("alwaysOn and off", func(t *testing.T) {
		setFailPoint(t, cl, "alwaysOn", D{{"failCommands", A{"count"}}, {"errorCode", 2}})
		for i := 0; i < 3; i++ {
			if _, err := coll.EstimatedDocumentCount(ctx); err == nil {
				t.Fatal("expected error")
			}
		}
		mustNoErr(t, cl.Database("admin").RunCommand(ctx, D{{"configureFailPoint", "failCommand"}, {"mode", "off"}}).Err())
		_, err := coll.EstimatedDocumentCount(ctx)
		mustNoErr(t, err)
	})
	t.Run("closeConnection", func(t *testing.T) {
		// Two activations: the driver retries reads once.
		setFailPoint(t, cl, D{{"times", 2}}, D{{"failCommands", A{"aggregate"}}, {"closeConnection", true}})
		_, err := coll.Aggregate(ctx, P{})
		if !mongo.IsNetworkError(err) {
			t.Fatalf("err %v", err)
		}
		_, err = coll.Aggregate(ctx, P{})
		mustNoErr(t, err)
	})
	t.Run("blockConnection", func(t *testing.T) {
		setFailPoint(t, cl, D{{"times", 1}}, D{{"failCommands", A{"insert"}}, {"blockConnection", true}, {"blockTimeMS", 300}})
		start := time.Now()
		_, err := coll.InsertOne(ctx, D{{"x", 1}})
		mustNoErr(t, err)
		if d := time.Since(start); d < 250*time.Millisecond {
			t.Fatalf("insert took only %v", d)
		}
	})
	t.Run("retryable write error is retried", func(t *testing.T) {
		setFailPoint(t, cl, D{{"times", 1}}, D{{"failCommands", A{"insert"}}, {"errorCode", 91}})
		_, err := coll.InsertOne(ctx, D{{"y", 1}})
		mustNoErr(t, err)
	})
	t.Run("writeConcernError", func(t *testing.T) {
		setFailPoint(t, cl, D{{"times", 1}}, D{{"failCommands", A{"insert"}}, {"writeConcernError", D{{"code", 64}, {"errmsg", "waiting for replication timed out"}}}})
		_, err := coll.InsertOne(ctx, D{{"z", 1}})
		var we mongo.WriteException
		if !errors.As(err, &we) || we.WriteConcernError == nil || we.WriteConcernError.Code != 64 {
			t.Fatalf("err %v", err)
		}
	})
	for _, tc := range []struct {
		name       string
		failPoint  string
		data       D
		wantResume bool
		wantCode   int32
	}{
		{"CursorNotFound resumes", "failCommand", D{{"failCommands", A{"getMore"}}, {"errorCode", 43}}, true, 0},
		{"network error resumes", "failCommand", D{{"failCommands", A{"getMore"}}, {"closeConnection", true}}, true, 0},
		{"ResumableChangeStreamError label resumes", "failCommand", D{{"failCommands", A{"getMore"}}, {"errorCode", 50}, {"errorLabels", A{"ResumableChangeStreamError"}}}, true, 0},
		{"after cursor checkout resumes", "failGetMoreAfterCursorCheckout", D{{"errorCode", 6}}, true, 0},
		{"unlabelled error surfaces", "failCommand", D{{"failCommands", A{"getMore"}}, {"errorCode", 6}}, false, 6},
	} {
		t.Run("change stream "+tc.name, func(t *testing.T) {
			var cmds []string
			mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
				if e.CommandName == "aggregate" || e.CommandName == "getMore" {
					cmds = append(cmds, e.CommandName)
				}
			}}
			cl2 := connect(t, srv.URI(), options.Client().SetMonitor(mon))
			coll2 := cl2.Database("db").Collection("fpcs")
			cs := watch(t, coll2, nil, nil)
			mustNoErr(t, cl.Database("admin").RunCommand(ctx, D{{"configureFailPoint", tc.failPoint}, {"mode", D{{"times", 1}}}, {"data", tc.data}}).Err())
			_, err := cl.Database("db").Collection("fpcs").InsertOne(ctx, D{{"x", 1}})
			mustNoErr(t, err)
			ctx2, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			ok := cs.Next(ctx2)
			if tc.wantResume {
				if !ok {
					t.Fatalf("no event: %v (commands %v)", cs.Err(), cmds)
				}
				if len(cmds) < 3 || cmds[0] != "aggregate" || cmds[1] != "getMore" || cmds[2] != "aggregate" {
					t.Fatalf("commands %v", cmds)
				}
				return
			}
			var se mongo.ServerError
			if ok || !errors.As(cs.Err(), &se) || !se.HasErrorCode(int(tc.wantCode)) {
				t.Fatalf("ok=%v err=%v", ok, cs.Err())
			}
		})
	}
}
