package mongotest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// dockerURI starts (once per test binary) a mongo:8 single-node replica set
// and returns a direct connection URI to it. The container is removed by
// testcontainers' reaper when the test process ends.
func dockerURI(t testing.TB) string {
	t.Helper()
	docker.once.Do(func() { docker.uri, docker.err = startDocker() })
	if docker.err != nil {
		t.Fatalf("mongotest: %s=docker asked for a real MongoDB in Docker, but it could not start: %v", EnvBackend, docker.err)
	}
	return docker.uri
}

func startDocker() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:        "mongo:8",
			Cmd:          []string{"mongod", "--replSet", "rs0", "--bind_ip_all", "--setParameter", "enableTestCommands=1"},
			ExposedPorts: []string{"27017/tcp"},
			WaitingFor:   wait.ForLog("Waiting for connections").WithStartupTimeout(2 * time.Minute),
		},
		Started: true,
	})
	if err != nil {
		return "", fmt.Errorf("is a Docker engine reachable? %w", err)
	}
	host, err := c.Host(ctx)
	if err != nil {
		return "", err
	}
	port, err := c.MappedPort(ctx, "27017/tcp")
	if err != nil {
		return "", err
	}
	// The member's own name is only reachable inside the container, so the
	// tests connect directly to the one member.
	uri := fmt.Sprintf("mongodb://%s:%s/?directConnection=true", host, port.Port())
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return "", err
	}
	defer client.Disconnect(ctx)
	err = client.Database("admin").RunCommand(ctx, bson.D{{Key: "replSetInitiate", Value: bson.D{}}}).Err()
	if err != nil {
		return "", fmt.Errorf("replSetInitiate: %w", err)
	}
	for ctx.Err() == nil {
		var hello struct {
			IsWritablePrimary bool `bson:"isWritablePrimary"`
		}
		if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err == nil && hello.IsWritablePrimary {
			return uri, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return "", fmt.Errorf("replica set did not elect a primary: %w", ctx.Err())
}
