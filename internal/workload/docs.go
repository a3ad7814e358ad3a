package workload

import (
	"fmt"
	"math/rand/v2"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// tenants are the workload's tenant ids (UUID binaries, subtype 4).
var tenants = func() []bson.Binary {
	out := make([]bson.Binary, 8)
	for i := range out {
		b := make([]byte, 16)
		for j := range b {
			b[j] = byte(0x11*(i+1) + j*7)
		}
		b[6] = b[6]&0x0f | 0x40 // version 4
		b[8] = b[8]&0x3f | 0x80 // variant
		out[i] = bson.Binary{Subtype: 4, Data: b}
	}
	return out
}()

var (
	severities = []string{"low", "moderate", "high", "critical"}
	ecosystems = []string{"npm", "pypi", "maven", "golang", "nuget", "cargo"}
	vexStatus  = []string{"not_affected", "affected", "fixed", "under_investigation"}
	runStates  = []string{"queued", "running", "completed", "failed", "cancelled"}
	epoch      = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func date(r *rand.Rand) bson.DateTime {
	return bson.NewDateTimeFromTime(epoch.Add(time.Duration(r.Int64N(int64(900 * 24 * time.Hour)))).Truncate(time.Millisecond))
}

func decimal(r *rand.Rand, intPart, frac int) bson.Decimal128 {
	s := fmt.Sprintf("%d.%0*d", r.IntN(intPart), frac, r.IntN(pow10(frac)))
	d, err := bson.ParseDecimal128(s)
	if err != nil {
		panic(err)
	}
	return d
}

func pow10(n int) int {
	p := 1
	for range n {
		p *= 10
	}
	return p
}

func purl(r *rand.Rand) string {
	return fmt.Sprintf("pkg:%s/lib-%03d@%d.%d.%d", pick(r, ecosystems), r.IntN(500), r.IntN(5), r.IntN(20), r.IntN(30))
}

func affected(r *rand.Rand) bson.D {
	return bson.D{
		{Key: "purl", Value: purl(r)},
		{Key: "ranges", Value: bson.A{bson.D{
			{Key: "type", Value: "SEMVER"},
			{Key: "events", Value: bson.A{
				bson.D{{Key: "introduced", Value: "0"}},
				bson.D{{Key: "fixed", Value: fmt.Sprintf("%d.%d.%d", r.IntN(5), r.IntN(20), r.IntN(30))}},
			}},
		}}},
	}
}

func advisory(r *rand.Rand, id string) bson.D {
	n := r.IntN(5)
	aff := bson.A{}
	for range n {
		aff = append(aff, affected(r))
	}
	d := bson.D{
		{Key: "_id", Value: id},
		{Key: "tenantId", Value: pick(r, tenants)},
		{Key: "severity", Value: pick(r, severities)},
		{Key: "metrics", Value: bson.D{{Key: "cvss", Value: decimal(r, 10, 1)}, {Key: "epss", Value: r.Float64()}}},
		{Key: "published", Value: date(r)},
		{Key: "modified", Value: date(r)},
		{Key: "revision", Value: int64(r.IntN(100))},
		{Key: "aliases", Value: bson.A{fmt.Sprintf("CVE-20%02d-%05d", 20+r.IntN(7), r.IntN(100000))}},
		{Key: "affected", Value: aff},
		{Key: "references", Value: bson.A{bson.D{{Key: "type", Value: "WEB"}, {Key: "url", Value: "https://example.org/advisories/" + id}}}},
	}
	if r.IntN(3) > 0 {
		d = append(d, bson.E{Key: "summary", Value: fmt.Sprintf("%s issue in lib-%03d — «unicode» ok", pick(r, severities), r.IntN(500))})
	}
	return d
}

func product(r *rand.Rand) bson.D {
	subs := bson.A{}
	for range r.IntN(3) {
		subs = append(subs, bson.D{{Key: "purl", Value: purl(r)}})
	}
	return bson.D{{Key: "purl", Value: purl(r)}, {Key: "subcomponents", Value: subs}}
}

func statement(r *rand.Rand, id bson.ObjectID) bson.D {
	prods := bson.A{}
	for range 1 + r.IntN(3) {
		prods = append(prods, product(r))
	}
	d := bson.D{
		{Key: "_id", Value: id},
		{Key: "tenantId", Value: pick(r, tenants)},
		{Key: "vulnerabilityId", Value: fmt.Sprintf("CVE-20%02d-%05d", 20+r.IntN(7), r.IntN(100000))},
		{Key: "status", Value: pick(r, vexStatus)},
		{Key: "timestamp", Value: date(r)},
		{Key: "version", Value: int64(1)},
		{Key: "products", Value: prods},
		{Key: "author", Value: bson.D{{Key: "name", Value: "vendor-" + fmt.Sprint(r.IntN(20))}, {Key: "role", Value: "supplier"}}},
	}
	if r.IntN(2) == 0 {
		d = append(d, bson.E{Key: "justification", Value: "vulnerable_code_not_in_execute_path"})
	}
	return d
}

func run(r *rand.Rand, id string) bson.D {
	d := bson.D{
		{Key: "_id", Value: id},
		{Key: "tenantId", Value: pick(r, tenants)},
		{Key: "scheduleId", Value: fmt.Sprintf("sched-%03d", r.IntN(50))},
		{Key: "state", Value: pick(r, runStates)},
		{Key: "trigger", Value: bson.D{{Key: "kind", Value: "cron"}, {Key: "at", Value: date(r)}}},
		{Key: "stats", Value: bson.D{
			{Key: "queued", Value: int32(r.IntN(1000))},
			{Key: "completed", Value: int64(r.IntN(1 << 20))},
			{Key: "durationMs", Value: float64(r.IntN(1_000_000)) / 8},
		}},
		{Key: "cost", Value: decimal(r, 1000, 6)},
		{Key: "createdAt", Value: date(r)},
	}
	if r.IntN(2) == 0 {
		d = append(d, bson.E{Key: "finishedAt", Value: date(r)})
	}
	return d
}
