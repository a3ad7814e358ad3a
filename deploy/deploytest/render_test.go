// Package deploytest checks the deployment files under deploy/: it lints and
// renders the Helm chart (deploy/helm/replicator) with Helm's own Go
// packages, decodes every rendered object strictly into its Kubernetes API
// type (an unknown or misspelled field fails), evaluates each pod against
// the "restricted" Pod Security Standard with the admission controller's own
// checks, and asserts what the replicator needs: a PersistentVolume and one
// replica for the embedded buffer, probes, secrets only from Secret objects,
// pinned images, and the alert rules of deploy/prometheus/alerts.yaml. The
// plain manifests in deploy/kubernetes/ are the chart's renderings, checked
// in; this test fails when they are out of date, and
//
//	cd deploy/deploytest && go test -run TestManifests -update
//
// (or `make deploy-manifests`) rewrites them and the chart's copy of the
// alert rules.
//
// It is a module of its own so that Helm and the Kubernetes API packages do
// not become dependencies of the replicator; `make test` runs it.
package deploytest

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite deploy/kubernetes/*.yaml and the chart's files/alerts.yaml")

const (
	chartDir   = "../helm/replicator"
	alertsFile = "../prometheus/alerts.yaml"
	// The release name and namespace of the checked-in renderings. The
	// objects carry no namespace: apply them with `kubectl -n NS`.
	releaseName = "replicator"
	namespace   = "replicator"
	metricsPort = 9187
	dataMount   = "/var/lib/replicator"
)

// A layout is one value set of the chart and its checked-in rendering.
type layout struct {
	name       string
	valuesFile string // relative to the chart; "" for values.yaml alone
	manifest   string
	embedded   bool
}

var layouts = []layout{
	{name: "embedded", manifest: "../kubernetes/replicator.yaml", embedded: true},
	{name: "external-nats", valuesFile: "ci/external-nats-values.yaml", manifest: "../kubernetes/replicator-external-nats.yaml"},
}

// render renders the chart as `helm template replicator deploy/helm/replicator
// --namespace replicator [-f valuesFile]` does, in Helm's install order.
func render(t *testing.T, valuesFile string, overrides map[string]any) (string, error) {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	vals := map[string]any{}
	if valuesFile != "" {
		v, err := chartutil.ReadValuesFile(filepath.Join(chartDir, valuesFile))
		if err != nil {
			t.Fatalf("read %s: %v", valuesFile, err)
		}
		vals = v.AsMap()
	}
	for k, v := range overrides {
		vals[k] = v
	}
	rv, err := chartutil.ToRenderValues(chrt, vals, chartutil.ReleaseOptions{
		Name: releaseName, Namespace: namespace, Revision: 1, IsInstall: true,
	}, nil)
	if err != nil {
		return "", err
	}
	files, err := engine.Render(chrt, rv)
	if err != nil {
		return "", err
	}
	for name := range files {
		if !strings.HasSuffix(name, ".yaml") {
			delete(files, name) // _helpers.tpl, NOTES.txt
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(files, nil, releaseutil.InstallOrder)
	if err != nil {
		return "", err
	}
	if len(hooks) > 0 {
		t.Fatalf("the chart has hooks; the plain manifests would lose them")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Generated from the Helm chart deploy/helm/replicator; do not edit.\n")
	fmt.Fprintf(&b, "# Regenerate with `make deploy-manifests`. Equivalent to:\n")
	fmt.Fprintf(&b, "#   helm template %s deploy/helm/replicator --namespace %s", releaseName, namespace)
	if valuesFile != "" {
		fmt.Fprintf(&b, " \\\n#     -f deploy/helm/replicator/%s", valuesFile)
	}
	fmt.Fprintf(&b, "\n# Apply with: kubectl apply -n NAMESPACE -f FILE (create the Secrets first, see README.md).\n")
	for _, m := range manifests {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.Name, strings.TrimSpace(m.Content))
	}
	return b.String(), nil
}

// objects is a rendering decoded into typed objects.
type objects struct {
	configMaps   []*corev1.ConfigMap
	services     []*corev1.Service
	statefulSets []*appsv1.StatefulSet
	monitors     []*monitoringv1.ServiceMonitor
	rules        []*monitoringv1.PrometheusRule
}

// decode splits a multi-document YAML stream and decodes each document into
// its Kubernetes type, rejecting unknown fields and duplicate keys.
func decode(t *testing.T, stream string) objects {
	t.Helper()
	var objs objects
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(stream, -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		js, err := yaml.YAMLToJSONStrict([]byte(doc))
		if err != nil {
			t.Fatalf("document %d: %v\n%s", i, err, doc)
		}
		var tm metav1.TypeMeta
		if err := json.Unmarshal(js, &tm); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var into any
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 ConfigMap":
			o := &corev1.ConfigMap{}
			objs.configMaps, into = append(objs.configMaps, o), o
		case "v1 Service":
			o := &corev1.Service{}
			objs.services, into = append(objs.services, o), o
		case "apps/v1 StatefulSet":
			o := &appsv1.StatefulSet{}
			objs.statefulSets, into = append(objs.statefulSets, o), o
		case "monitoring.coreos.com/v1 ServiceMonitor":
			o := &monitoringv1.ServiceMonitor{}
			objs.monitors, into = append(objs.monitors, o), o
		case "monitoring.coreos.com/v1 PrometheusRule":
			o := &monitoringv1.PrometheusRule{}
			objs.rules, into = append(objs.rules, o), o
		default:
			// A Secret in particular: the chart must never render one.
			t.Fatalf("document %d: unexpected kind %q %q", i, tm.APIVersion, tm.Kind)
		}
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		if err := dec.Decode(into); err != nil {
			t.Fatalf("document %d (%s): %v\n%s", i, tm.Kind, err, doc)
		}
	}
	return objs
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func TestLint(t *testing.T) {
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			vals := map[string]any{}
			if l.valuesFile != "" {
				v, err := chartutil.ReadValuesFile(filepath.Join(chartDir, l.valuesFile))
				if err != nil {
					t.Fatal(err)
				}
				vals = v.AsMap()
			}
			// As `helm lint --strict`: warnings fail too.
			res := lint.All(chartDir, vals, namespace, false)
			for _, m := range res.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("helm lint: %s", m)
				} else {
					t.Logf("helm lint: %s", m)
				}
			}
		})
	}
}

// TestManifests checks that deploy/kubernetes/ holds the chart's current
// renderings and that the chart carries the current alert rules.
func TestManifests(t *testing.T) {
	canonical, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(chartDir, "files", "alerts.yaml")
	if *update {
		if err := os.WriteFile(copyPath, canonical, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := os.ReadFile(copyPath); err != nil || !bytes.Equal(got, canonical) {
		t.Errorf("%s differs from %s (err %v); run `make deploy-manifests`", copyPath, alertsFile, err)
	}
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			out, err := render(t, l.valuesFile, nil)
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				if err := os.WriteFile(l.manifest, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := os.ReadFile(l.manifest)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != out {
				t.Errorf("%s is not the chart's current rendering; run `make deploy-manifests`", l.manifest)
			}
		})
	}
}

// TestLayouts checks the renderings (and so the checked-in manifests, which
// TestManifests keeps equal to them).
func TestLayouts(t *testing.T) {
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			out, err := render(t, l.valuesFile, nil)
			if err != nil {
				t.Fatal(err)
			}
			objs := decode(t, out)
			checkNoSecretsInConfigMaps(t, objs)
			checkAlertRules(t, objs)
			checkMonitoring(t, objs)
			for _, sts := range objs.statefulSets {
				checkRestricted(t, evaluator, sts)
				checkImagesPinned(t, sts)
				checkSecretEnv(t, sts)
			}
			rep := find(t, objs.statefulSets, releaseName)
			checkReplicator(t, l, rep, find(t, objs.configMaps, releaseName))
			if l.embedded {
				if len(objs.statefulSets) != 1 {
					t.Errorf("embedded layout: %d StatefulSets, want only the replicator", len(objs.statefulSets))
				}
			} else {
				checkNATSCluster(t, find(t, objs.statefulSets, releaseName+"-nats"), find(t, objs.configMaps, releaseName+"-nats"))
			}
		})
	}
}

func find[T interface{ GetName() string }](t *testing.T, objs []T, name string) T {
	t.Helper()
	for _, o := range objs {
		if o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no object named %q", name)
	var zero T
	return zero
}

// checkRestricted evaluates the pod template with the Pod Security Admission
// controller's checks at the "restricted" level, and asserts the fields
// that level needs explicitly too.
func checkRestricted(t *testing.T, ev policy.Evaluator, sts *appsv1.StatefulSet) {
	t.Helper()
	pod := sts.Spec.Template
	results := ev.EvaluatePod(psapi.LevelVersion{Level: psapi.LevelRestricted, Version: psapi.LatestVersion()}, &pod.ObjectMeta, &pod.Spec)
	if agg := policy.AggregateCheckResults(results); !agg.Allowed {
		t.Errorf("%s: violates the restricted Pod Security Standard: %s (%s)", sts.Name, agg.ForbiddenReason(), strings.Join(agg.ForbiddenDetails, "; "))
	}
	psc := pod.Spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("%s: pod securityContext must set runAsNonRoot: true and a non-zero runAsUser", sts.Name)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod seccompProfile must be RuntimeDefault", sts.Name)
	}
	if psc == nil || psc.FSGroup == nil {
		t.Errorf("%s: pod securityContext needs fsGroup so the volume is writable", sts.Name)
	}
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		sc := c.SecurityContext
		switch {
		case sc == nil:
			t.Errorf("%s/%s: no securityContext", sts.Name, c.Name)
			continue
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("%s/%s: allowPrivilegeEscalation must be false", sts.Name, c.Name)
		case sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
			t.Errorf("%s/%s: capabilities must drop ALL and add none", sts.Name, c.Name)
		case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
			t.Errorf("%s/%s: runAsNonRoot must be true", sts.Name, c.Name)
		case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
			t.Errorf("%s/%s: seccompProfile must be RuntimeDefault", sts.Name, c.Name)
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("%s/%s: the root filesystem should be read-only", sts.Name, c.Name)
		}
	}
	if pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
		t.Errorf("%s: the pod needs no API token; set automountServiceAccountToken: false", sts.Name)
	}
}

var digestRE = regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)

// checkImagesPinned: an exact tag (not latest, not a bare major) or a digest.
func checkImagesPinned(t *testing.T, sts *appsv1.StatefulSet) {
	t.Helper()
	for _, c := range sts.Spec.Template.Spec.Containers {
		img := c.Image
		if digestRE.MatchString(img) {
			continue
		}
		i := strings.LastIndex(img, ":")
		if i < 0 || strings.Contains(img[i:], "/") {
			t.Errorf("%s/%s: image %q has no tag", sts.Name, c.Name, img)
			continue
		}
		tag := img[i+1:]
		if tag == "latest" || !regexp.MustCompile(`^v?\d+\.\d+\.\d+`).MatchString(tag) {
			t.Errorf("%s/%s: image %q is not pinned to an exact version or a digest", sts.Name, c.Name, img)
		}
		if c.ImagePullPolicy == corev1.PullAlways {
			t.Errorf("%s/%s: pullPolicy Always with a pinned image", sts.Name, c.Name)
		}
	}
}

// checkSecretEnv: connection strings come from Secret objects, never literals.
func checkSecretEnv(t *testing.T, sts *appsv1.StatefulSet) {
	t.Helper()
	for _, c := range sts.Spec.Template.Spec.Containers {
		byName := map[string]corev1.EnvVar{}
		for _, e := range c.Env {
			byName[e.Name] = e
			if credentialsRE.MatchString(e.Value) && !strings.Contains(e.Value, ":$(") {
				t.Errorf("%s/%s: env %s holds a credential literally", sts.Name, c.Name, e.Name)
			}
		}
		for _, name := range []string{"REPLICATOR_SOURCE_URI", "REPLICATOR_TARGET_URL", "NATS_PASSWORD"} {
			e, ok := byName[name]
			if !ok {
				continue
			}
			if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				t.Errorf("%s/%s: env %s must come from a secretKeyRef", sts.Name, c.Name, name)
			}
		}
		if e, ok := byName["REPLICATOR_BUFFER_NATS_URL"]; ok && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
			// Allowed only as a reference to a secret-backed variable.
			if !strings.Contains(e.Value, "$(NATS_PASSWORD)") {
				t.Errorf("%s/%s: REPLICATOR_BUFFER_NATS_URL is neither from a Secret nor built from one", sts.Name, c.Name)
			}
			if _, ok := byName["NATS_PASSWORD"]; !ok {
				t.Errorf("%s/%s: REPLICATOR_BUFFER_NATS_URL refers to $(NATS_PASSWORD), which is not defined", sts.Name, c.Name)
			}
		}
	}
}

// credentialsRE matches user:password@ in a URL.
var credentialsRE = regexp.MustCompile(`://[^/\s:@]+:[^@\s]+@`)

// checkNoSecretsInConfigMaps: no credentials in any ConfigMap, and the
// replicator's config leaves its connection strings to the environment.
func checkNoSecretsInConfigMaps(t *testing.T, objs objects) {
	t.Helper()
	passwordRE := regexp.MustCompile(`(?im)^\s*(password|pass|token|secret)\s*[:=]\s*(\S+)`)
	for _, cm := range objs.configMaps {
		if len(cm.BinaryData) > 0 {
			t.Errorf("ConfigMap %s: unexpected binaryData", cm.Name)
		}
		for key, v := range cm.Data {
			if credentialsRE.MatchString(v) {
				t.Errorf("ConfigMap %s/%s holds a URL with credentials", cm.Name, key)
			}
			for _, m := range passwordRE.FindAllStringSubmatch(v, -1) {
				if !strings.HasPrefix(m[2], "$") { // an environment reference
					t.Errorf("ConfigMap %s/%s holds a literal %s", cm.Name, key, m[1])
				}
			}
		}
	}
}

// replicatorConfig is the part of the config file the checks read.
type replicatorConfig struct {
	Source  map[string]any `json:"source"`
	Target  map[string]any `json:"target"`
	Buffer  map[string]any `json:"buffer"`
	Metrics map[string]any `json:"metrics"`
}

func checkReplicator(t *testing.T, l layout, sts *appsv1.StatefulSet, cm *corev1.ConfigMap) {
	t.Helper()
	var cfg replicatorConfig
	if err := yaml.Unmarshal([]byte(cm.Data["replicator.yaml"]), &cfg); err != nil {
		t.Fatalf("config: %v", err)
	}
	// Secrets: from the environment only (or ${VAR} references).
	for _, kv := range []struct {
		section map[string]any
		key     string
	}{{cfg.Source, "uri"}, {cfg.Target, "url"}, {cfg.Buffer, "nats_url"}} {
		if v, _ := kv.section[kv.key].(string); v != "" && !strings.HasPrefix(v, "${") {
			t.Errorf("config: %s is set in the ConfigMap; it must come from the Secret", kv.key)
		}
	}
	if got := cfg.Metrics["listen"]; got != fmt.Sprintf("0.0.0.0:%d", metricsPort) {
		t.Errorf("config: metrics.listen = %v; in a pod it must listen on 0.0.0.0:%d", got, metricsPort)
	}

	spec := sts.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("replicator pod: %d containers", len(spec.Containers))
	}
	c := spec.Containers[0]
	if !reflect.DeepEqual(c.Args, []string{"run", "--config", "/etc/replicator/replicator.yaml"}) {
		t.Errorf("replicator args = %q", c.Args)
	}
	if spec.TerminationGracePeriodSeconds == nil || *spec.TerminationGracePeriodSeconds < 60 {
		t.Errorf("terminationGracePeriodSeconds must leave `run` time to drain (>= 60 s)")
	}

	// Probes: startup generous (the first start's snapshot), then liveness on
	// /healthz and readiness on /readyz, all on the metrics port.
	var port int32
	for _, p := range c.Ports {
		if p.Name == "metrics" {
			port = p.ContainerPort
		}
	}
	if port != metricsPort {
		t.Errorf("metrics containerPort = %d, want %d", port, metricsPort)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"startup", c.StartupProbe, "/healthz"}, {"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe: missing or not HTTP", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "metrics" {
			t.Errorf("%s probe: GET %s on %s, want %s on metrics", p.name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path)
		}
	}
	if sp := c.StartupProbe; sp != nil && sp.PeriodSeconds*sp.FailureThreshold < 3600 {
		t.Errorf("startup probe allows %d s; the first snapshot needs hours", sp.PeriodSeconds*sp.FailureThreshold)
	}

	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	var claims []string
	for _, pvc := range sts.Spec.VolumeClaimTemplates {
		claims = append(claims, pvc.Name)
	}
	env := map[string]bool{}
	for _, e := range c.Env {
		env[e.Name] = true
	}
	if l.embedded {
		if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 1 {
			t.Errorf("embedded buffer: replicas must be 1")
		}
		if !reflect.DeepEqual(claims, []string{"data"}) || mounts["data"] != dataMount {
			t.Errorf("embedded buffer: want the PersistentVolumeClaim template data mounted at %s; claims %v, mounts %v", dataMount, claims, mounts)
		}
		if dir, _ := cfg.Buffer["data_dir"].(string); !strings.HasPrefix(dir, dataMount+"/") {
			t.Errorf("embedded buffer: buffer.data_dir = %q, not on the volume %s", dir, dataMount)
		}
		if env["REPLICATOR_BUFFER_NATS_URL"] {
			t.Errorf("embedded buffer: REPLICATOR_BUFFER_NATS_URL is set")
		}
		if r := sts.Spec.PersistentVolumeClaimRetentionPolicy; r == nil || r.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
			t.Errorf("embedded buffer: the claim must be retained when the StatefulSet is deleted")
		}
		// A second replica is refused.
		if _, err := render(t, l.valuesFile, map[string]any{"replicaCount": 2}); err == nil || !strings.Contains(err.Error(), "replicaCount must be 1") {
			t.Errorf("replicaCount 2 with the embedded buffer: err = %v, want a refusal", err)
		}
	} else {
		if len(claims) != 0 {
			t.Errorf("external NATS: the replicator needs no volume, has %v", claims)
		}
		if !env["REPLICATOR_BUFFER_NATS_URL"] {
			t.Errorf("external NATS: REPLICATOR_BUFFER_NATS_URL is not set")
		}
		if fmt.Sprint(cfg.Buffer["replicas"]) != "3" {
			t.Errorf("external NATS: buffer.replicas = %v, want 3", cfg.Buffer["replicas"])
		}
	}
}

func checkNATSCluster(t *testing.T, sts *appsv1.StatefulSet, cm *corev1.ConfigMap) {
	t.Helper()
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 3 {
		t.Errorf("NATS cluster: replicas must be 3")
	}
	if len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Errorf("NATS cluster: each node needs a PersistentVolumeClaim for JetStream")
	}
	conf := cm.Data["nats.conf"]
	for _, want := range []string{"jetstream {", "store_dir: /data/", "cluster {", "password: $NATS_PASSWORD", "server_name: $SERVER_NAME"} {
		if !strings.Contains(conf, want) {
			t.Errorf("nats.conf lacks %q", want)
		}
	}
	if n := strings.Count(conf, "nats://"); n != 3 {
		t.Errorf("nats.conf: %d routes, want 3", n)
	}
}

// checkAlertRules: the PrometheusRule carries exactly the groups of
// deploy/prometheus/alerts.yaml.
func checkAlertRules(t *testing.T, objs objects) {
	t.Helper()
	if len(objs.rules) != 1 {
		t.Fatalf("%d PrometheusRules, want 1", len(objs.rules))
	}
	raw, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		t.Fatal(err)
	}
	var want monitoringv1.PrometheusRuleSpec
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&want); err != nil {
		t.Fatalf("%s as a PrometheusRule spec: %v", alertsFile, err)
	}
	got := objs.rules[0].Spec
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("PrometheusRule spec differs from %s:\n got %s\nwant %s", alertsFile, g, w)
	}
	var alerts []string
	for _, g := range got.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
		}
	}
	sort.Strings(alerts)
	if len(alerts) < 10 || !strings.Contains(strings.Join(alerts, ","), "ReplicatorDown") {
		t.Errorf("PrometheusRule alerts: %v", alerts)
	}
}

// checkMonitoring: the ServiceMonitor selects the metrics Service, which
// selects the replicator pods and names the port the ServiceMonitor scrapes.
func checkMonitoring(t *testing.T, objs objects) {
	t.Helper()
	svc := find(t, objs.services, releaseName)
	sts := find(t, objs.statefulSets, releaseName)
	if sts.Spec.ServiceName != svc.Name {
		t.Errorf("StatefulSet serviceName %q, want %q", sts.Spec.ServiceName, svc.Name)
	}
	podLabels := sts.Spec.Template.Labels
	for k, v := range svc.Spec.Selector {
		if podLabels[k] != v {
			t.Errorf("Service selector %s=%s does not match the pod labels", k, v)
		}
	}
	for k, v := range sts.Spec.Selector.MatchLabels {
		if podLabels[k] != v {
			t.Errorf("StatefulSet selector %s=%s does not match its pod labels", k, v)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "metrics" || svc.Spec.Ports[0].Port != metricsPort || svc.Spec.Ports[0].TargetPort.String() != "metrics" {
		t.Errorf("Service ports = %+v, want metrics %d", svc.Spec.Ports, metricsPort)
	}
	if len(objs.monitors) != 1 {
		t.Fatalf("%d ServiceMonitors, want 1", len(objs.monitors))
	}
	sm := objs.monitors[0]
	for k, v := range sm.Spec.Selector.MatchLabels {
		if svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selector %s=%s does not match the Service labels", k, v)
		}
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints = %+v", sm.Spec.Endpoints)
	}
}

// TestDockerfile: pinned base images, a non-root user, the version stamped,
// and a .dockerignore that keeps local state out of the build context.
func TestDockerfile(t *testing.T) {
	df, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms, users []string
	for _, line := range strings.Split(string(df), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms = append(froms, f[1])
		case "USER":
			users = append(users, f[1])
		}
	}
	if len(froms) < 2 {
		t.Errorf("want a build stage and a runtime stage, FROM lines: %v", froms)
	}
	for _, img := range froms {
		if !regexp.MustCompile(`^[^@]+:[^@/]+@sha256:[0-9a-f]{64}$`).MatchString(img) {
			t.Errorf("base image %q is not pinned as name:tag@sha256:digest", img)
		}
	}
	if len(users) == 0 || !regexp.MustCompile(`^[1-9][0-9]*(:[1-9][0-9]*)?$`).MatchString(users[len(users)-1]) {
		t.Errorf("the runtime stage must end with a numeric non-root USER, have %v", users)
	}
	if !strings.Contains(string(df), "-X github.com/mongopg/replicator/replicator.version=${VERSION}") {
		t.Errorf("the Dockerfile does not stamp the version with -ldflags -X ...replicator.version=${VERSION}")
	}
	ignore, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(ignore), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{".git", "bin/", ".demo/", "replicator-data/"} {
		if !lines[want] {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
}
