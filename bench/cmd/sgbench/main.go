package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sgrules/sgrules/bench"
)

func main() {
	ns := flag.String("n", "10,100,1000,5000", "rule counts, comma-separated")
	out := flag.String("out", "bench/results/latest.json", "JSON output path (empty: none)")
	baselineMax := flag.Int("baseline-max", 1000, "run the naive baseline on at most this many rules and scale up beyond (0: never)")
	slow := flag.Duration("slow", 0, "log every counted AWS call slower than this (0: none)")
	sweep := flag.Int("sweep", 0, "rules of the dedicated no-drift sweep benchmark, in ceil(rules/50) groups (0: skip; make bench: 10000)")
	patch := flag.Bool("moto-patch", true, "start moto_server with bench/motopatch (one table snapshot per TransactWriteItems instead of one per item)")
	conc := flag.Bool("concurrency", true, "run the sequential vs concurrent batch experiment")
	org := flag.Int("org", 0, "member accounts of the organisation sweep (0: skip; make bench: 10)")
	orgRegions := flag.Int("org-regions", 3, "regions per member account of the organisation sweep (at most 6)")
	orgRules := flag.Int("org-rules", 100, "rules per target (account and region) of the organisation sweep")
	orgWorkers := flag.Int("org-workers", 5, "targets swept at once by the organisation sweep's fan-out (the sweep queue's MaximumConcurrency)")
	orgTargets := flag.String("org-targets", "", "numbers of targets to run the organisation sweep at again, comma-separated, for DynamoDB items read per target (make bench: 2,10,30; empty: none)")
	loadFiles := flag.Int("load-files", 0, "changed files of the load scenario's sync, as S3 notifications in SQS batches (0: skip; make bench: 300)")
	loadFunctions := flag.Int("load-functions", 4, "reconcile functions of the load scenario running at once, one Lambda emulator each")
	loadInOrder := flag.Bool("load-in-order", false, "deliver the load scenario's notifications in upload order (default: shuffled, as the queue does not keep the order)")
	flag.Parse()

	var opt bench.Options
	for _, s := range strings.Split(*ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "sgbench: bad -n value %q\n", s)
			os.Exit(2)
		}
		opt.Ns = append(opt.Ns, n)
	}
	opt.BaselineMax, opt.Concurrency, opt.SlowCall, opt.MotoPatch, opt.SweepRules = *baselineMax, *conc, *slow, *patch, *sweep
	if *org < 0 || *orgRegions < 1 || *orgRegions > len(bench.OrgRegions) || *orgRules < 1 || *orgWorkers < 1 {
		fmt.Fprintf(os.Stderr, "sgbench: bad organisation sweep size (-org %d -org-regions %d -org-rules %d -org-workers %d)\n", *org, *orgRegions, *orgRules, *orgWorkers)
		os.Exit(2)
	}
	opt.Org = bench.OrgOptions{Accounts: *org, Regions: *orgRegions, Rules: *orgRules, Workers: *orgWorkers}
	for _, s := range strings.Split(*orgTargets, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || (n%3 == 0 && n/3 < 1) {
			fmt.Fprintf(os.Stderr, "sgbench: bad -org-targets value %q\n", s)
			os.Exit(2)
		}
		opt.OrgTargets = append(opt.OrgTargets, n)
	}
	if *loadFiles < 0 || (*loadFiles > 0 && *loadFunctions < 1) {
		fmt.Fprintf(os.Stderr, "sgbench: bad load scenario size (-load-files %d -load-functions %d)\n", *loadFiles, *loadFunctions)
		os.Exit(2)
	}
	opt.Load = bench.LoadOptions{Files: *loadFiles, Functions: *loadFunctions, Seed: 1, InOrder: *loadInOrder}
	opt.Logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

	rep, err := bench.Run(context.Background(), opt)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sgbench:", err)
		os.Exit(1)
	}
	rep.Date = time.Now().UTC().Format(time.RFC3339)
	rep.Commit = gitCommit()
	rep.GoVersion = runtime.Version()
	rep.Platform = runtime.GOOS + "/" + runtime.GOARCH
	rep.NProc = runtime.NumCPU()
	rep.CPU = cpuModel()
	rep.Moto = motoVersion()

	printTable(os.Stdout, rep)
	if *out != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			fmt.Fprintln(os.Stderr, "sgbench:", err)
			os.Exit(1)
		}
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "sgbench:", err)
			os.Exit(1)
		}
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "sgbench:", err)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "wrote", *out)
	}
}

func printTable(w io.Writer, rep *bench.Report) {
	fmt.Fprintf(w, "sgbench %s  commit %s  %s %s  %d CPUs (%s)  moto %s\n\n", rep.Date, rep.Commit, rep.GoVersion, rep.Platform, rep.NProc, rep.CPU, rep.Moto)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "N\tG\tscenario\timpl\tEC2\tmut\t(modify)\tread\t(EC2 pages)\tlimit\tDDB\t(writes)\tDDB items read\tS3\twall ms\theap peak MiB\theap growth MiB\talloc MiB\tthrottle floor s\tplan a/r/u\tratio\t")
	for _, r := range rep.Rows {
		plan, ratio := "", ""
		if r.Impl == "sgrules" {
			plan = fmt.Sprintf("%d/%d/%d", r.Authorize, r.Revoke, r.Update)
			if r.RatioEC2 > 0 {
				ratio = fmt.Sprintf("%.1fx", r.RatioEC2)
			} else {
				ratio = "n/0"
			}
		}
		impl := r.Impl
		if r.Extrapolated {
			impl += fmt.Sprintf(" (x%d/%d)", r.N, r.SampleN)
		}
		limit := ""
		if r.EC2ReadLimit > 0 {
			limit = fmt.Sprint(r.EC2ReadLimit)
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t%s\t\n",
			r.N, r.Groups, r.Scenario, impl, r.EC2, r.EC2Mutating, r.EC2Modify, r.EC2Read, r.EC2ReadRealPages, limit, r.DynamoDB, r.DynamoDBWrites, r.DynamoDBItemsRead, r.S3,
			r.WallMS, r.PeakHeapInuseMiB, r.HeapGrowthMiB, r.TotalAllocMiB, r.ThrottleFloorS, plan, ratio)
	}
	tw.Flush()
	if s := rep.Sweep; s != nil {
		c := s.Clean
		fmt.Fprintf(w, "\nsweep, nothing drifted: %d managed rules in %d groups: EC2 %d calls, %d mutating, %d reads (%s) = %d reads on real EC2 (pages of 1000); DynamoDB %d (%s), %d writes; S3 %d; wall %.1f s; heap peak %.1f MiB, growth %.1f MiB, alloc %.1f MiB\n",
			s.Rules, s.Groups, c.EC2, c.EC2Mutating, c.EC2Read, opsOf(c, "EC2."), c.EC2ReadRealPages, c.DynamoDB, opsOf(c, "DynamoDB."), c.DynamoDBWrites,
			c.S3, c.WallMS/1000, c.PeakHeapInuseMiB, c.HeapGrowthMiB, c.TotalAllocMiB)
		u := s.Setup
		fmt.Fprintf(w, "  (set-up, from scratch: EC2 %d, %d mutating, %d reads = %d on real EC2; DynamoDB %d, %d writes; S3 %d; wall %.1f s; heap peak %.1f MiB)\n",
			u.EC2, u.EC2Mutating, u.EC2Read, u.EC2ReadRealPages, u.DynamoDB, u.DynamoDBWrites, u.S3, u.WallMS/1000, u.PeakHeapInuseMiB)
	}
	if o := rep.Org; o != nil {
		fmt.Fprintf(w, "\norganisation sweep, nothing drifted: %d accounts x %d regions (%s) = %d targets, %d rules in %d groups each:\n",
			o.Accounts, len(o.Regions), strings.Join(o.Regions, ", "), o.Targets, o.RulesPerTarget, o.GroupsPerTarget)
		for _, s := range []struct {
			name string
			s    bench.OrgSweep
		}{{"sequential (one Fleet.Reconcile, 1 target at a time)", o.Sequential}, {fmt.Sprintf("fan-out (planner + 1 Fleet.Reconcile per target, %d at once)", o.Workers), o.FanOut}} {
			c := s.s
			fmt.Fprintf(w, "  %s: %d targets swept; EC2 %d (%s), per target at most %d reads and %d writes; AssumeRole %d; DynamoDB %d (%s), %d writes; S3 %d; wall %.1f s\n",
				s.name, c.TargetsSwept, c.EC2, opsOf(c.Row, "EC2."), c.MaxEC2ReadsPerTarget, c.MaxEC2MutatingPerTarget, c.AssumeRole,
				c.DynamoDB, opsOf(c.Row, "DynamoDB."), c.DynamoDBWrites, c.S3, c.WallMS/1000)
		}
		fmt.Fprintf(w, "  fan-out speed-up x%.2f; (set-up, from scratch: EC2 %d, %d mutating; AssumeRole %d; DynamoDB %d; wall %.1f s)\n",
			o.Speedup, o.Setup.EC2, o.Setup.EC2Mutating, o.Setup.ByAction["STS.AssumeRole"], o.Setup.DynamoDB, o.Setup.WallMS/1000)
	}
	if len(rep.OrgScale) > 0 {
		fmt.Fprintf(w, "\norganisation sweep by size (nothing drifted; DynamoDB items read, as DynamoDB charges reads):\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "targets\tDDB items (seq)\tper target\tDDB items (fan-out)\tper target\tDDB calls seq/fan-out\tEC2 reads\tmax per target\t")
		for _, s := range rep.OrgScale {
			fmt.Fprintf(tw, "%d\t%d\t%.0f\t%d\t%.0f\t%d/%d\t%d\t%d\t\n", s.Targets, s.SeqItemsRead, s.SeqItemsReadPerTarget,
				s.FanOutItemsRead, s.FanOutItemsReadPerTarget, s.SeqDynamoDBCalls, s.FanOutDynamoDBCalls, s.EC2Reads, s.MaxEC2ReadsPerTarget)
		}
		tw.Flush()
	}
	if l := rep.Load; l != nil {
		order := "shuffled"
		if l.InOrder {
			order = "in upload order"
		}
		fmt.Fprintf(w, "\nload: a sync of %d changed files (%d groups; per file one rule changed in place, one replaced) as S3 notifications (%s) in SQS batches of %d to %d reconcile functions at once (emulator instances):\n",
			l.Files, l.Groups, order, l.BatchSize, l.Functions)
		fmt.Fprintf(w, "  converged in %.1f s, %d invocations, %d messages delivered again, %d function errors; modified %d, authorized %d, revoked %d rules (each change once), %d refused calls\n",
			l.WallMS/1000, l.Invocations, l.Redelivered, l.FunctionErrors, l.Modified, l.Authorized, l.Revoked, l.FailedMutating)
		fmt.Fprintf(w, "  EC2 mutating %d (limit %d with each group's files in one run; 2 per touched pair: %d); %d touched pairs written by %d runs (%d pairs by more than one), limit as delivered %d; at most %d calls per pair, %d per pair and run\n",
			l.EC2Mutating, l.EC2MutatingLimit, 2*l.TouchedPairs, l.TouchedPairs, l.PairRuns, l.SplitPairs, l.RunLimit, l.MaxCallsPerPair, l.MaxCallsPerPairRun)
		fmt.Fprintf(w, "  lease contention: %d lease tries refused (waited on), %d attempts lost to a held lease, %d to another race, %d batches retried message by message; bound %d (2 per touched pair plus %d retries)\n",
			l.LeaseRefusals, l.AttemptsLostToLease, l.AttemptsLostOther, l.BatchFallbacks, l.Bound, l.Retries)
	}
	if c := rep.Concurrency; c != nil {
		fmt.Fprintf(w, "\nconcurrency: %d groups x %d rules, 1 vs %d workers: authorize %.0f vs %.0f ms (x%.2f), revoke %.0f vs %.0f ms (x%.2f)\n",
			c.Groups, c.RulesPerGroup, c.Workers, c.SeqAuthorizeMS, c.ConcAuthorizeMS, c.SpeedupAuthorize, c.SeqRevokeMS, c.ConcRevokeMS, c.SpeedupRevoke)
	}
	fmt.Fprintf(w, "total %.0f s\n", rep.TotalS)
}

// opsOf renders the calls of one service as "Op N, Op N".
func opsOf(r bench.Row, prefix string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(r.ByAction)) {
		if op, ok := strings.CutPrefix(k, prefix); ok {
			parts = append(parts, fmt.Sprintf("%s %d", op, r.ByAction[k]))
		}
	}
	return strings.Join(parts, ", ")
}

func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func motoVersion() string {
	out, err := exec.Command("python3", "-c", "import moto; print(moto.__version__)").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
