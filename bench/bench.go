package bench

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sgrules/sgrules/internal/dev/apicount"
	"github.com/sgrules/sgrules/internal/reconcile"
)

// Scenario names, in the order they run on one world.
const (
	ScScratch    = "scratch"      // apply N rules into G empty groups
	ScReapply    = "reapply"      // the same files again (event naming every file)
	ScChange     = "change-10%"   // 10% of rules change: half ports, half descriptions
	ScRemoveFile = "remove-file"  // delete the file holding 10%
	ScSweep      = "sweep-clean"  // Request{All: true}, nothing drifted
	ScSweepDrift = "sweep-drift1" // 1% of managed rules deleted by hand, then a sweep
)

// Scenarios lists them in order.
var Scenarios = []string{ScScratch, ScReapply, ScChange, ScRemoveFile, ScSweep, ScSweepDrift}

// Options of a run.
type Options struct {
	// Ns are the rule counts to run.
	Ns []int
	// BaselineMax bounds the rules the naive baseline really applies; for
	// a larger N it runs on BaselineMax rules and its counts and times are
	// scaled by N/BaselineMax (exact for counts: every naive call is per
	// rule), and the row is marked extrapolated. 0 means no bound.
	BaselineMax int
	// Concurrency runs the sequential vs concurrent batch experiment.
	Concurrency bool
	// Logf reports progress (nil: silent).
	Logf func(format string, args ...any)
	// SweepRules, if > 0, runs the dedicated sweep benchmark on that many
	// rules (groups: ceil(SweepRules/50)); see Sweep.
	SweepRules int
	// MotoPatch starts moto_server with bench/motopatch (see startMoto).
	MotoPatch bool
	// SlowCall, if > 0, logs every counted AWS call slower than it.
	SlowCall time.Duration
	// Org, if Org.Accounts > 0, runs the organisation sweep; see Org.
	Org OrgOptions
	// OrgTargets, if any, runs the organisation sweep again at each of
	// these numbers of targets (Org's rules and workers; 3 regions when the
	// number divides by 3, else 1) to show how the ledger reads grow with
	// the organisation (Report.OrgScale).
	OrgTargets []int
	// Load, if Load.Files > 0, runs the load scenario (Report.Load).
	Load LoadOptions
}

// Counts are API calls of one scenario.
type Counts struct {
	// ByAction maps "Service.Operation" to calls.
	ByAction map[string]int `json:"byAction"`
	EC2      int            `json:"ec2"`
	// EC2Mutating counts Authorize*, Revoke* and Modify* calls.
	EC2Mutating int `json:"ec2Mutating"`
	// EC2Modify is the part of EC2Mutating that is
	// ModifySecurityGroupRules (description updates; for sgrules on moto
	// also the fix-up of descriptions moto drops on group-peer rules).
	EC2Modify int `json:"ec2Modify"`
	EC2Read   int `json:"ec2Read"`
	// EC2ReadRealPages is EC2Read as real EC2 would count it: moto answers
	// every describe in one page, EC2 in pages of 1000 items (computed
	// from the items each call returned).
	EC2ReadRealPages int `json:"ec2ReadRealPages"`
	// EC2ReadLimit (sgrules rows of the N runs) is the physical limit of
	// EC2ReadRealPages the issue sets for every phase: ceil(N/1000) + 1
	// (the rules in scope once, in pages of 1000, and one call for the
	// groups).
	EC2ReadLimit int `json:"ec2ReadLimit,omitempty"`
	// DynamoDBItemsRead is the items DynamoDB read (as it charges reads:
	// ScannedCount of Scans and Queries, the items of Gets).
	DynamoDBItemsRead int `json:"dynamodbItemsRead"`
	DynamoDB          int `json:"dynamodb"`
	DynamoDBWrites    int `json:"dynamodbWrites"`
	S3                int `json:"s3"`
	S3Get             int `json:"s3Get"`
}

// Row is one scenario for one implementation.
type Row struct {
	N        int    `json:"n"`
	Groups   int    `json:"groups"`
	Scenario string `json:"scenario"`
	// Impl is "sgrules" or "naive".
	Impl string `json:"impl"`
	Counts
	// MSByAction is the client-side time spent in each "Service.Operation"
	// (summed over its calls; concurrent calls each count): against moto,
	// where moto spends its time.
	MSByAction map[string]float64 `json:"msByAction,omitempty"`
	WallMS     float64            `json:"wallMs"`
	// PeakHeapInuseMiB is the highest runtime HeapInuse sampled every 2 ms
	// during the scenario (the whole benchmark process: engine, SDK
	// clients, buffers); HeapGrowthMiB is that peak minus HeapInuse after
	// a GC just before it: what the run itself held at its peak.
	// TotalAllocMiB is everything allocated during it.
	PeakHeapInuseMiB float64 `json:"peakHeapInuseMiB"`
	HeapGrowthMiB    float64 `json:"heapGrowthMiB"`
	TotalAllocMiB    float64 `json:"totalAllocMiB"`
	// ThrottleFloorS is the least time EC2's default buckets allow for
	// these calls starting full: max over buckets of (calls-burst)/refill
	// (ingress authorize/revoke 50, 5/s; other mutating 50, 5/s;
	// describe 100, 20/s).
	ThrottleFloorS float64 `json:"throttleFloorS"`
	// Plan counts (sgrules only).
	Authorize int `json:"authorize,omitempty"`
	Revoke    int `json:"revoke,omitempty"`
	Update    int `json:"update,omitempty"`
	Modify    int `json:"modify,omitempty"`
	// Extrapolated: a naive row measured on SampleN rules and scaled.
	Extrapolated bool `json:"extrapolated,omitempty"`
	SampleN      int  `json:"sampleN,omitempty"`
	// RatioEC2 (sgrules rows) is naive EC2 calls / sgrules EC2 calls; 0
	// when sgrules made no EC2 call.
	RatioEC2 float64 `json:"ratioEC2,omitempty"`
}

// Concurrency is the sequential vs concurrent batch experiment: G groups
// of RulesPerGroup ingress rules authorized then revoked, one call per
// group, with 1 and with Workers goroutines.
type Concurrency struct {
	Groups           int     `json:"groups"`
	RulesPerGroup    int     `json:"rulesPerGroup"`
	Workers          int     `json:"workers"`
	SeqAuthorizeMS   float64 `json:"seqAuthorizeMs"`
	ConcAuthorizeMS  float64 `json:"concAuthorizeMs"`
	SeqRevokeMS      float64 `json:"seqRevokeMs"`
	ConcRevokeMS     float64 `json:"concRevokeMs"`
	SeqPerCallMS     float64 `json:"seqPerCallMs"`
	ConcPerCallMS    float64 `json:"concPerCallMs"`
	SpeedupAuthorize float64 `json:"speedupAuthorize"`
	SpeedupRevoke    float64 `json:"speedupRevoke"`
}

// Report is the whole run.
type Report struct {
	Date        string       `json:"date"`
	Commit      string       `json:"commit"`
	GoVersion   string       `json:"goVersion"`
	Platform    string       `json:"platform"`
	NProc       int          `json:"nproc"`
	CPU         string       `json:"cpu"`
	Moto        string       `json:"moto"`
	MotoPatch   string       `json:"motoPatch,omitempty"`
	BaselineMax int          `json:"baselineMax"`
	Rows        []Row        `json:"rows"`
	Sweep       *Sweep       `json:"sweep,omitempty"`
	Org         *Org         `json:"org,omitempty"`
	OrgScale    []OrgScale   `json:"orgScale,omitempty"`
	Concurrency *Concurrency `json:"concurrency,omitempty"`
	Load        *Load        `json:"load,omitempty"`
	TotalS      float64      `json:"totalSeconds"`
}

// Run starts moto, runs every N (sgrules then the naive baseline, each on
// a fresh moto state) and stops moto.
func Run(ctx context.Context, opt Options) (*Report, error) {
	logf := opt.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	start := time.Now()
	traceSlow, traceLogf = opt.SlowCall, logf
	p, stop, err := startMoto(ctx, opt.MotoPatch)
	if err != nil {
		return nil, err
	}
	defer stop()
	rep := &Report{BaselineMax: opt.BaselineMax}
	if opt.MotoPatch {
		rep.MotoPatch = MotoPatchNote
	}
	// A naive run on a sample is reused for every larger N.
	naiveBySize := map[int][]Row{}
	for _, n := range opt.Ns {
		if err := p.Reset(ctx); err != nil {
			return nil, err
		}
		logf("N=%d: sgrules", n)
		rows, err := runSgrules(ctx, p.URL, n, logf)
		if err != nil {
			return nil, fmt.Errorf("sgrules N=%d: %w", n, err)
		}
		sample := n
		if opt.BaselineMax > 0 && n > opt.BaselineMax {
			sample = opt.BaselineMax
		}
		measuredRows, ok := naiveBySize[sample]
		if ok {
			logf("N=%d: naive baseline scaled from the run on %d rules", n, sample)
		} else {
			if err := p.Reset(ctx); err != nil {
				return nil, err
			}
			logf("N=%d: naive baseline on %d rules", n, sample)
			measuredRows, err = runNaive(ctx, p.URL, sample, logf)
			if err != nil {
				return nil, fmt.Errorf("naive N=%d: %w", n, err)
			}
			naiveBySize[sample] = measuredRows
		}
		naiveRows := append([]Row(nil), measuredRows...)
		for i := range naiveRows {
			if sample != n {
				naiveRows[i] = scale(naiveRows[i], n, groupsFor(n), sample)
			}
			if rows[i].EC2 > 0 {
				rows[i].RatioEC2 = float64(naiveRows[i].EC2) / float64(rows[i].EC2)
			}
		}
		for i := range rows {
			rep.Rows = append(rep.Rows, rows[i], naiveRows[i])
		}
	}
	if opt.SweepRules > 0 {
		if err := p.Reset(ctx); err != nil {
			return nil, err
		}
		logf("sweep: %d rules in %d groups", opt.SweepRules, groupsFor(opt.SweepRules))
		sw, err := runSweep(ctx, p.URL, opt.SweepRules, logf)
		if err != nil {
			return nil, fmt.Errorf("sweep %d: %w", opt.SweepRules, err)
		}
		rep.Sweep = sw
	}
	if o := opt.Org; o.Accounts > 0 {
		if err := p.Reset(ctx); err != nil {
			return nil, err
		}
		logf("org: %d accounts x %d regions, %d rules each, fan-out over %d workers", o.Accounts, o.Regions, o.Rules, o.Workers)
		org, err := runOrg(ctx, p.URL, o, logf)
		if err != nil {
			return nil, fmt.Errorf("org sweep: %w", err)
		}
		rep.Org = org
		rep.Rows = append(rep.Rows, org.Setup, org.Sequential.Row, org.FanOut.Row)
	}
	for _, nt := range opt.OrgTargets {
		if err := p.Reset(ctx); err != nil {
			return nil, err
		}
		o := opt.Org
		o.Regions = 1
		if nt%3 == 0 {
			o.Regions = 3
		}
		o.Accounts = nt / o.Regions
		logf("org scale: %d targets (%d accounts x %d regions), %d rules each", nt, o.Accounts, o.Regions, o.Rules)
		org, err := runOrg(ctx, p.URL, o, logf)
		if err != nil {
			return nil, fmt.Errorf("org sweep of %d targets: %w", nt, err)
		}
		rep.OrgScale = append(rep.OrgScale, scaleOf(org))
	}
	if opt.Load.Files > 0 {
		if err := p.Reset(ctx); err != nil {
			return nil, err
		}
		logf("load: %d changed files to %d reconcile functions", opt.Load.Files, opt.Load.Functions)
		l, err := runLoad(ctx, p.URL, opt.Load, logf)
		if err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		rep.Load = l
	}
	if opt.Concurrency {
		if err := p.Reset(ctx); err != nil {
			return nil, err
		}
		logf("concurrency experiment")
		c, err := runConcurrency(ctx, p.URL, 20, 4)
		if err != nil {
			return nil, fmt.Errorf("concurrency: %w", err)
		}
		rep.Concurrency = c
	}
	rep.TotalS = time.Since(start).Seconds()
	return rep, nil
}

// EC2ReadLimit is the least EC2 reads (pages of 1000 on real EC2) a run
// over n rules can make, the bound of every phase (issue 24): the rules
// in scope once, ceil(n/1000) pages, and one call for the groups.
func EC2ReadLimit(n int) int { return (n+999)/1000 + 1 }

// measure runs fn, counting calls and sampling the heap.
type measured struct {
	counts                   Counts
	opMS                     map[string]float64
	extraPages               map[string]int
	ddbItems                 int
	wall                     time.Duration
	peak, growth, totalAlloc float64
}

func measure(w *world, fn func() error) (measured, error) {
	calls := w.calls
	calls.Reset()
	w.timer.take()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, alloc0 := ms.HeapInuse, ms.TotalAlloc
	peak := base
	var mu sync.Mutex
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		var s runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				runtime.ReadMemStats(&s)
				mu.Lock()
				peak = max(peak, s.HeapInuse)
				mu.Unlock()
			}
		}
	}()
	t0 := time.Now()
	err := fn()
	wall := time.Since(t0)
	close(stop)
	<-done
	runtime.ReadMemStats(&ms)
	mu.Lock()
	peak = max(peak, ms.HeapInuse)
	mu.Unlock()
	const mib = 1 << 20
	opMS, extra, items := w.timer.take()
	return measured{
		counts: classify(calls.Snapshot()), opMS: opMS, extraPages: extra, ddbItems: items, wall: wall,
		peak: float64(peak) / mib, growth: float64(peak-base) / mib, totalAlloc: float64(ms.TotalAlloc-alloc0) / mib,
	}, err
}

func classify(snap map[string]int) Counts {
	c := Counts{ByAction: snap}
	for k, v := range snap {
		svc, op, _ := strings.Cut(k, ".")
		switch svc {
		case "EC2":
			c.EC2 += v
			if apicount.IsEC2Mutating(op) {
				c.EC2Mutating += v
				if isModify(op) {
					c.EC2Modify += v
				}
			} else {
				c.EC2Read += v
			}
		case "DynamoDB":
			c.DynamoDB += v
			if apicount.IsDynamoDBWrite(op) {
				c.DynamoDBWrites += v
			}
		case "S3":
			c.S3 += v
			if op == "GetObject" {
				c.S3Get += v
			}
		}
	}
	return c
}

// throttleFloor is the least time EC2's default buckets allow for snap.
func throttleFloor(snap map[string]int) float64 {
	var ingress, mutating, describe int
	for k, v := range snap {
		svc, op, _ := strings.Cut(k, ".")
		if svc != "EC2" {
			continue
		}
		switch {
		case op == "AuthorizeSecurityGroupIngress" || op == "RevokeSecurityGroupIngress":
			ingress += v
		case apicount.IsEC2Mutating(op):
			mutating += v
		default:
			describe += v
		}
	}
	f := func(calls, burst int, rate float64) float64 { return max(0, float64(calls-burst)/rate) }
	return max(f(ingress, 50, 5), f(mutating, 50, 5), f(describe, 100, 20))
}

func row(n, g int, sc, impl string, m measured) Row {
	m.counts.EC2ReadRealPages = m.counts.EC2Read
	m.counts.DynamoDBItemsRead = m.ddbItems
	for _, v := range m.extraPages {
		m.counts.EC2ReadRealPages += v
	}
	return Row{N: n, Groups: g, Scenario: sc, Impl: impl, Counts: m.counts, MSByAction: m.opMS,
		WallMS: float64(m.wall.Microseconds()) / 1000, PeakHeapInuseMiB: m.peak, HeapGrowthMiB: m.growth,
		TotalAllocMiB: m.totalAlloc, ThrottleFloorS: throttleFloor(m.counts.ByAction)}
}

func runSgrules(ctx context.Context, url string, n int, logf func(string, ...any)) ([]Row, error) {
	g := groupsFor(n)
	w, err := newWorld(ctx, url, g)
	if err != nil {
		return nil, err
	}
	eng, err := w.engine()
	if err != nil {
		return nil, err
	}
	specs := genRules(n, g)
	files, err := renderFiles(specs, n, nil)
	if err != nil {
		return nil, err
	}
	allKeys := slices.Sorted(maps.Keys(files))
	var rows []Row
	run := func(sc string, prepare func() error, req reconcile.Request) error {
		if prepare != nil {
			if err := prepare(); err != nil {
				return fmt.Errorf("%s: prepare: %w", sc, err)
			}
		}
		r, _, err := reconcileRow(ctx, w, eng, n, g, sc, req, logf)
		if err != nil {
			return err
		}
		rows = append(rows, r)
		return nil
	}
	removed := fileKey(NumFiles - 1)
	steps := []struct {
		sc      string
		prepare func() error
		req     reconcile.Request
	}{
		{ScScratch, func() error { return w.putFiles(ctx, files) }, reconcile.Request{Keys: allKeys}},
		{ScReapply, nil, reconcile.Request{Keys: allKeys}},
		{ScChange, func() error {
			ch, err := renderFiles(changed(specs, g), n, nil)
			if err != nil {
				return err
			}
			return w.putFiles(ctx, ch)
		}, reconcile.Request{Keys: allKeys}},
		{ScRemoveFile, func() error { return w.deleteFile(ctx, removed) }, reconcile.Request{Keys: []string{removed}}},
		{ScSweep, nil, reconcile.Request{All: true}},
		{ScSweepDrift, func() error {
			managed, err := w.managedRules(ctx)
			if err != nil {
				return err
			}
			return w.revokeByHand(ctx, everyHundredth(managed))
		}, reconcile.Request{All: true}},
	}
	for _, s := range steps {
		if err := run(s.sc, s.prepare, s.req); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

// reconcileRow runs one measured Reconcile and checks every source in
// scope was applied (or deleted).
func reconcileRow(ctx context.Context, w *world, eng *reconcile.Engine, n, g int, sc string, req reconcile.Request,
	logf func(string, ...any)) (Row, reconcile.Result, error) {
	req.Reason = "bench " + sc
	var res reconcile.Result
	m, err := measure(w, func() error {
		var err error
		res, err = eng.Reconcile(ctx, req)
		return err
	})
	if err != nil {
		return Row{}, res, fmt.Errorf("%s: %w", sc, err)
	}
	for _, s := range res.Sources {
		if s.Status != reconcile.StatusApplied && s.Status != reconcile.StatusDeleted {
			return Row{}, res, fmt.Errorf("%s: source %s %s: %s %v", sc, s.Key, s.Status, s.Message, s.Diagnostics.Strings())
		}
	}
	r := row(n, g, sc, "sgrules", m)
	r.EC2ReadLimit = EC2ReadLimit(n)
	r.Authorize, r.Revoke, r.Update = res.Plan.Count(reconcile.ActAuthorize), res.Plan.Count(reconcile.ActRevoke), res.Plan.Count(reconcile.ActUpdate)
	r.Modify = res.Plan.Count(reconcile.ActModify)
	logf("  %-13s ec2=%d (mut %d, read %d, EC2 pages %d, limit %d) ddb=%d (items read %d) s3=%d plan a/r/m/u=%d/%d/%d/%d %.0fms heap %.0f MiB  [%s]", sc, r.EC2, r.EC2Mutating,
		r.EC2Read, r.EC2ReadRealPages, r.EC2ReadLimit, r.DynamoDB, r.DynamoDBItemsRead, r.S3, r.Authorize, r.Revoke, r.Modify, r.Update, r.WallMS, r.PeakHeapInuseMiB,
		strings.Join(topOps(r.MSByAction, 4), " "))
	return r, res, nil
}

func runNaive(ctx context.Context, url string, n int, logf func(string, ...any)) ([]Row, error) {
	g := groupsFor(n)
	w, err := newWorld(ctx, url, g)
	if err != nil {
		return nil, err
	}
	nv := &naive{ec2: ecClient(w), groups: w.groups, state: map[int]string{}}
	specs := genRules(n, g)
	next := changed(specs, g)
	var rows []Row
	refreshAll := func() ([]int, error) {
		var gone []int
		for _, i := range sortedInts(nv.state) {
			ok, err := nv.refresh(ctx, i)
			if err != nil {
				return nil, err
			}
			if !ok {
				gone = append(gone, i)
			}
		}
		return gone, nil
	}
	steps := []struct {
		sc      string
		prepare func() error
		fn      func() error
	}{
		{ScScratch, nil, func() error {
			for _, s := range specs {
				if err := nv.create(ctx, s); err != nil {
					return err
				}
			}
			return nil
		}},
		{ScReapply, nil, func() error { _, err := refreshAll(); return err }},
		{ScChange, nil, func() error {
			if _, err := refreshAll(); err != nil {
				return err
			}
			for _, s := range next {
				switch isChanged(s.i, g) {
				case "port":
					if err := nv.revoke(ctx, specs[s.i]); err != nil {
						return err
					}
					if err := nv.create(ctx, s); err != nil {
						return err
					}
				case "desc":
					if err := nv.modify(ctx, s); err != nil {
						return err
					}
				}
			}
			return nil
		}},
		{ScRemoveFile, nil, func() error {
			for _, s := range next {
				if fileOf(s.i, n) != NumFiles-1 {
					continue
				}
				if _, err := nv.refresh(ctx, s.i); err != nil {
					return err
				}
				if err := nv.revoke(ctx, s); err != nil {
					return err
				}
			}
			return nil
		}},
		{ScSweep, nil, func() error { _, err := refreshAll(); return err }},
		{ScSweepDrift, func() error {
			// Delete 1% by hand, uncounted.
			hand := &naive{ec2: w.ec2, groups: w.groups, state: nv.state}
			for _, i := range everyHundredth(sortedInts(nv.state)) {
				id := nv.state[i]
				if err := hand.revoke(ctx, next[i]); err != nil {
					return err
				}
				nv.state[i] = id // the tool's state still has it
			}
			return nil
		}, func() error {
			gone, err := refreshAll()
			if err != nil {
				return err
			}
			for _, i := range gone {
				if err := nv.create(ctx, next[i]); err != nil {
					return err
				}
			}
			return nil
		}},
	}
	for _, s := range steps {
		if s.prepare != nil {
			if err := s.prepare(); err != nil {
				return nil, fmt.Errorf("%s: prepare: %w", s.sc, err)
			}
		}
		m, err := measure(w, s.fn)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.sc, err)
		}
		r := row(n, g, s.sc, "naive", m)
		logf("  %-13s ec2=%d (mut %d) %.0fms", s.sc, r.EC2, r.EC2Mutating, r.WallMS)
		rows = append(rows, r)
	}
	return rows, nil
}

// scale turns a naive row measured on sample rules into one for n rules.
func scale(r Row, n, g, sample int) Row {
	f := float64(n) / float64(sample)
	mul := func(v int) int { return int(float64(v)*f + 0.5) }
	by := make(map[string]int, len(r.ByAction))
	for k, v := range r.ByAction {
		by[k] = mul(v)
	}
	out := r
	out.Counts = classify(by)
	out.EC2ReadRealPages = out.EC2Read + mul(r.EC2ReadRealPages-r.EC2Read)
	out.N, out.Groups = n, g
	out.WallMS = r.WallMS * f
	out.TotalAllocMiB = r.TotalAllocMiB * f
	out.ThrottleFloorS = throttleFloor(by)
	out.Extrapolated, out.SampleN = true, sample
	return out
}

func sortedInts(m map[int]string) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}
