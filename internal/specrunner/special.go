package specrunner

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
)

// special runs a testRunner operation.
func (r *Runner) special(ctx context.Context, st *testState, name string, a args) error {
	switch name {
	case "failPoint":
		if err := a.check(name, "client", "failPoint"); err != nil {
			return err
		}
		id, err := a.str("client")
		if err != nil {
			return err
		}
		c, err := st.entities.client(id)
		if err != nil {
			return err
		}
		fp, err := a.document("failPoint")
		if err != nil {
			return err
		}
		fpName, ok := fp.Lookup("configureFailPoint").StringValueOK()
		if !ok {
			return fmt.Errorf("failPoint: configureFailPoint must name the fail point")
		}
		err = c.client.Database("admin").RunCommand(ctx, fp,
			options.RunCmd().SetReadPreference(readpref.Primary())).Err()
		if err != nil {
			return fmt.Errorf("configureFailPoint %s: %w", fpName, err)
		}
		st.failPoints = append(st.failPoints, failPoint{client: c, name: fpName})
		return nil
	case "wait":
		if err := a.check(name, "ms"); err != nil {
			return err
		}
		select {
		case <-time.After(time.Duration(a.value("ms").AsInt64()) * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	case "assertCollectionExists", "assertCollectionNotExists":
		if err := a.check(name, "databaseName", "collectionName"); err != nil {
			return err
		}
		dbName, err := a.str("databaseName")
		if err != nil {
			return err
		}
		collName, err := a.str("collectionName")
		if err != nil {
			return err
		}
		names, err := r.cfg.Internal.Database(dbName).ListCollectionNames(ctx, bson.D{{Key: "name", Value: collName}})
		if err != nil {
			return fmt.Errorf("%s: listCollections: %w", name, err)
		}
		if exists := len(names) > 0; exists != (name == "assertCollectionExists") {
			return fmt.Errorf("%s: collection %s.%s exists=%v", name, dbName, collName, exists)
		}
		return nil
	}
	return fmt.Errorf("testRunner operation %s is not supported by this runner", name)
}
