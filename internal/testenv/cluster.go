package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ClusterName is the cluster name of every NATSCluster.
const ClusterName = "replicator-test"

// Cluster is an in-process NATS JetStream cluster for one test.
type Cluster struct {
	// Nodes are the cluster's servers, named "n1".."nN" in that order.
	Nodes []*ClusterNode

	t testing.TB
}

// ClusterNode is one server of a Cluster. Its client and route ports and its
// storage stay the same across Shutdown, Crash and Start.
type ClusterNode struct {
	// Name is the server name ("n1", "n2", ...).
	Name string
	// URL is the node's client URL (its client proxy's).
	URL string

	t    testing.TB
	opts *server.Options
	// The proxies every connection of the node goes through: its clients',
	// and the routes between it and each other node, either way.
	proxies []*proxy

	mu  sync.Mutex
	srv *server.Server // nil while shut down
}

// NATSCluster starts n (normally 3) nats-servers in this process forming one
// JetStream cluster: routes on loopback, each with its own file storage,
// every client and route connection through a loopback proxy (proxy.go)
// so that a node can be crashed (ClusterNode.Crash),
// server names "n1".."nN", cluster name "replicator-test". It returns once
// JetStream has a meta leader that knows all n peers and every node is
// current with it (waiting up to 30s). The nodes are shut down when the test
// ends.
func NATSCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("testenv: NATSCluster: %d nodes", n)
	}
	clientPorts, routePorts := make([]int, n), make([]int, n)
	for i := range n {
		clientPorts[i], routePorts[i] = freePort(t), freePort(t)
	}
	c := &Cluster{t: t}
	var all []*proxy
	newProxy := func(port int) *proxy {
		p, err := newProxy(fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatalf("testenv: NATSCluster: %v", err)
		}
		all = append(all, p)
		return p
	}
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		client := newProxy(clientPorts[i])
		c.Nodes = append(c.Nodes, &ClusterNode{
			Name:    name,
			URL:     "nats://" + client.addr(),
			t:       t,
			proxies: []*proxy{client},
			opts: &server.Options{
				ServerName:         name,
				Host:               "127.0.0.1",
				Port:               clientPorts[i],
				ClientAdvertise:    client.addr(), // what clients learn of it
				JetStream:          true,
				JetStreamMaxMemory: 256 << 20,
				JetStreamMaxStore:  2 << 30,
				StoreDir:           tempDir(t),
				Cluster: server.ClusterOpts{
					Name: ClusterName,
					Host: "127.0.0.1",
					Port: routePorts[i],
					// Routes only as configured, through the proxies.
					NoAdvertise: true,
				},
				NoLog:  true,
				NoSigs: true,
			},
		})
	}
	// Node i reaches node j through a proxy of the pair's own.
	for i, from := range c.Nodes {
		for j, to := range c.Nodes {
			if i == j {
				continue
			}
			p := newProxy(routePorts[j])
			from.opts.Routes = append(from.opts.Routes, &url.URL{Scheme: "nats-route", Host: p.addr()})
			from.proxies = append(from.proxies, p)
			to.proxies = append(to.proxies, p)
		}
	}
	// Registered after the storage directories, so it runs before they are
	// removed.
	t.Cleanup(func() {
		for _, node := range c.Nodes {
			node.Shutdown()
		}
		for _, p := range all {
			p.close()
		}
	})
	// Start them together: each waits for the routes to the others.
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, node := range c.Nodes {
		wg.Go(func() { errs[i] = node.start() })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("testenv: NATSCluster: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !c.ready() {
		if time.Now().After(deadline) {
			t.Fatalf("testenv: NATSCluster: no JetStream meta leader with all %d peers within 30s", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ready reports whether a meta leader knows every node as a peer and every
// running node is current with the meta group.
func (c *Cluster) ready() bool {
	leader := c.metaLeader()
	if leader == nil || len(leader.JetStreamClusterPeers()) != len(c.Nodes) {
		return false
	}
	for _, node := range c.Nodes {
		if s := node.server(); s != nil && !s.JetStreamIsCurrent() {
			return false
		}
	}
	return true
}

// metaLeader returns the running server leading the JetStream meta group, or
// nil.
func (c *Cluster) metaLeader() *server.Server {
	for _, node := range c.Nodes {
		if s := node.server(); s != nil && s.JetStreamIsLeader() {
			return s
		}
	}
	return nil
}

// URL is every node's client URL joined by commas (what nats.Connect and the
// replicator's buffer.nats_url accept).
func (c *Cluster) URL() string {
	urls := make([]string, len(c.Nodes))
	for i, node := range c.Nodes {
		urls[i] = node.URL
	}
	return strings.Join(urls, ",")
}

// Node returns the node with that server name. It fails the test for an
// unknown name.
func (c *Cluster) Node(name string) *ClusterNode {
	c.t.Helper()
	for _, node := range c.Nodes {
		if node.Name == name {
			return node
		}
	}
	c.t.Fatalf("testenv: NATSCluster has no node %q", name)
	return nil
}

// StreamLeader returns the running node currently leading the named stream
// (of the global account), asking the cluster through a client connection.
// It waits up to 30s for a leader (after a crash the stream, and the meta
// group when the crashed node led it, elect only after their election
// timeouts of up to 9s) and fails the test otherwise.
func (c *Cluster) StreamLeader(stream string) *ClusterNode {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		c.t.Fatalf("testenv: StreamLeader: connect: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		c.t.Fatalf("testenv: StreamLeader: %v", err)
	}
	var last string
	for {
		actx, acancel := context.WithTimeout(ctx, 500*time.Millisecond)
		s, err := js.Stream(actx, stream)
		acancel()
		switch {
		case err != nil:
			last = err.Error()
		case s.CachedInfo().Cluster == nil:
			last = "the stream info has no cluster information"
		default:
			leader := s.CachedInfo().Cluster.Leader
			for _, node := range c.Nodes {
				if node.Name == leader && node.Running() {
					return node
				}
			}
			last = fmt.Sprintf("leader %q", leader)
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("testenv: stream %s has no leader within 30s (last: %s)", stream, last)
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitHealthy waits (up to timeout) until a JetStream meta leader exists and
// every running node reports JetStream healthy (its /healthz with all
// streams and consumers checked) and current with the meta group. It fails
// the test otherwise.
func (c *Cluster) WaitHealthy(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		problem := c.unhealthy()
		if problem == "" {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("testenv: NATSCluster not healthy within %v: %s", timeout, problem)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// unhealthy describes why the cluster is not healthy, or returns "".
func (c *Cluster) unhealthy() string {
	if c.metaLeader() == nil {
		return "no JetStream meta leader"
	}
	for _, node := range c.Nodes {
		s := node.server()
		if s == nil {
			continue
		}
		if h := s.Healthz(&server.HealthzOptions{}); h.Status != "ok" {
			return fmt.Sprintf("%s: %s %s", node.Name, h.Status, h.Error)
		}
		if !s.JetStreamIsCurrent() {
			return fmt.Sprintf("%s: not current with the meta leader", node.Name)
		}
	}
	return ""
}

func (n *ClusterNode) start() error {
	// NewServer completes the options it is given; every start gets a fresh
	// copy of the originals.
	srv, err := server.NewServer(n.opts.Clone())
	if err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("%s: nats-server not ready within 30s", n.Name)
	}
	n.mu.Lock()
	n.srv = srv
	n.mu.Unlock()
	return nil
}

func (n *ClusterNode) server() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

// Shutdown stops the node; its stored data stays for Start. (The server
// hands off the Raft leaderships it holds as it stops, so the rest of the
// cluster elects new leaders sooner than after a crash.) Calling it on a
// stopped node does nothing.
func (n *ClusterNode) Shutdown() {
	n.mu.Lock()
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Crash stops the node as the death of its process would: every
// connection to and from it is reset at once and new ones are refused, so
// the other nodes hear no goodbye (no Raft leadership is handed over; they
// elect new leaders after their election timeout) and its clients see
// their connection reset. Only then is the cut-off server stopped; its
// stored data stays for Start. Calling it on a stopped node does nothing.
func (n *ClusterNode) Crash() {
	if !n.Running() {
		return
	}
	for _, p := range n.proxies {
		p.cut()
	}
	n.Shutdown()
}

// Start starts a node stopped by Shutdown or Crash again, on the same
// client and route ports with the same storage. It does nothing for a
// running node.
func (n *ClusterNode) Start() {
	n.t.Helper()
	if n.Running() {
		return
	}
	for _, p := range n.proxies {
		if err := p.open(); err != nil {
			n.t.Fatalf("testenv: NATSCluster restart: %s: %v", n.Name, err)
		}
	}
	if err := n.start(); err != nil {
		n.t.Fatalf("testenv: NATSCluster restart: %v", err)
	}
}

// Running reports whether the node is started (not shut down).
func (n *ClusterNode) Running() bool {
	return n.server() != nil
}

// StreamReplicas describes the named stream as each running node stores
// it (messages, bytes, first and last sequence, deleted count) and where
// its consumers' leaders are: replicas that disagree show a divergence
// after a failure.
func (c *Cluster) StreamReplicas(stream string) string {
	var b strings.Builder
	for _, node := range c.Nodes {
		s := node.server()
		if s == nil {
			fmt.Fprintf(&b, "%s: not running\n", node.Name)
			continue
		}
		jsz, err := s.Jsz(&server.JSzOptions{Accounts: true, Streams: true, Consumer: true})
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", node.Name, err)
			continue
		}
		for _, acc := range jsz.AccountDetails {
			for _, sd := range acc.Streams {
				if sd.Name != stream {
					continue
				}
				st := sd.State
				leader := ""
				if sd.Cluster != nil {
					leader = sd.Cluster.Leader
				}
				fmt.Fprintf(&b, "%s: %d messages, %d bytes, sequences %d..%d, %d deleted (stream leader %s)\n",
					node.Name, st.Msgs, st.Bytes, st.FirstSeq, st.LastSeq, st.NumDeleted, leader)
				for _, ci := range sd.Consumer {
					cl := ""
					if ci.Cluster != nil {
						cl = ci.Cluster.Leader
					}
					fmt.Fprintf(&b, "  consumer %s: delivered %d, ack floor %d, pending %d (leader %s)\n",
						ci.Name, ci.Delivered.Stream, ci.AckFloor.Stream, ci.NumPending, cl)
				}
			}
		}
	}
	return b.String()
}
