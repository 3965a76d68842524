// Package flowlogtest loads the labelled traffic corpus of pkg/flowlog
// (testdata/corpus) for tests at every level: the pure core, the AWS
// adapter against moto, and the CLI. The corpus names interfaces, groups,
// prefix lists and the VPC by placeholders ("{eni:web1}", "{sg:web}",
// "{pl:office}", "{vpc}") that each test maps to the ids it created.
package flowlogtest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/sgrules/sgrules/pkg/flowlog"
	"github.com/sgrules/sgrules/pkg/rules"
)

// World is the network the corpus's logs come from.
type World struct {
	VPCCIDR     string              `json:"vpcCidr"`
	Groups      []string            `json:"groups"`
	Interfaces  []Interface         `json:"interfaces"`
	PrefixLists map[string][]string `json:"prefixLists"`
}

// Interface is one network interface of the world: its placeholder name,
// the names (Name tags) of its groups, its addresses (the first IPv4 one
// is the primary).
type Interface struct {
	Name   string   `json:"name"`
	Groups []string `json:"groups"`
	Addrs  []string `json:"addrs"`
}

// Rule is the expected usage of one permission: the rule's file and name
// and the permission's peer ("cidr4:…", "pl:{pl:office}", "sg:{sg:web}").
type Rule struct {
	Source         string  `json:"source"`
	Rule           string  `json:"rule"`
	Peer           string  `json:"peer"`
	Flows          int64   `json:"flows"`
	Bytes          int64   `json:"bytes"`
	AmbiguousFlows int64   `json:"ambiguousFlows"`
	LastSeen       *string `json:"lastSeen"`
	LastPeer       string  `json:"lastPeer"`
}

func (r Rule) id() string { return r.Source + "#" + r.Rule + "#" + r.Peer }

func (r Rule) String() string {
	last := "null"
	if r.LastSeen != nil {
		last = *r.LastSeen
	}
	return fmt.Sprintf("%s: flows=%d bytes=%d ambiguous=%d lastSeen=%s lastPeer=%q",
		r.id(), r.Flows, r.Bytes, r.AmbiguousFlows, last, r.LastPeer)
}

// Expected is the labelled outcome of reading every log of the corpus.
type Expected struct {
	Rules []Rule `json:"rules"`
	Read  struct {
		Objects    int64 `json:"objects"`
		BadObjects int64 `json:"badObjects"`
		Accepted   int64 `json:"accepted"`
		Rejected   int64 `json:"rejected"`
		Malformed  int64 `json:"malformed"`
		NoData     int64 `json:"noData"`
	} `json:"read"`
	Attribution struct {
		Credited         int64 `json:"credited"`
		Unmatched        int64 `json:"unmatched"`
		UnknownSide      int64 `json:"unknownSide"`
		NoManagedGroup   int64 `json:"noManagedGroup"`
		UnknownInterface int64 `json:"unknownInterface"`
	} `json:"attribution"`
}

// Corpus is the loaded corpus.
type Corpus struct {
	Dir      string
	World    World
	Expected Expected
	// Rules and Logs are the files of rules/ and logs/ by base name, with
	// placeholders.
	Rules, Logs map[string]string
}

// Dir is the corpus directory, found from this source file.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "corpus")
}

// Load reads the corpus.
func Load() (*Corpus, error) {
	c := &Corpus{Dir: Dir(), Rules: map[string]string{}, Logs: map[string]string{}}
	for name, v := range map[string]any{"world.json": &c.World, "expected.json": &c.Expected} {
		b, err := os.ReadFile(filepath.Join(c.Dir, name))
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, v); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	for sub, m := range map[string]map[string]string{"rules": c.Rules, "logs": c.Logs} {
		ents, err := os.ReadDir(filepath.Join(c.Dir, sub))
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(c.Dir, sub, e.Name()))
			if err != nil {
				return nil, err
			}
			m[e.Name()] = string(b)
		}
	}
	return c, nil
}

// IDs maps placeholder names ("eni:web1", "sg:web", "pl:office", "vpc")
// to the ids a test created.
type IDs map[string]string

// Expand replaces every "{name}" of ids in s by its id.
func (ids IDs) Expand(s string) string {
	for _, k := range ids.keys() {
		s = strings.ReplaceAll(s, "{"+k+"}", ids[k])
	}
	return s
}

// Placeholders replaces every id of ids in s by its "{name}".
func (ids IDs) Placeholders(s string) string {
	for _, k := range ids.keys() {
		s = strings.ReplaceAll(s, ids[k], "{"+k+"}")
	}
	return s
}

// keys sorted longest id first, so that no id replaces part of another.
func (ids IDs) keys() []string {
	ks := make([]string, 0, len(ids))
	for k := range ids {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool {
		if len(ids[ks[i]]) != len(ids[ks[j]]) {
			return len(ids[ks[i]]) > len(ids[ks[j]])
		}
		return ks[i] < ks[j]
	})
	return ks
}

// Result is one permission's usage as a test under check saw it; Peer
// and LastPeer with real ids (Check maps them back).
type Result struct {
	Source, Rule, Peer    string
	Flows, Bytes          int64
	AmbiguousFlows        int64
	LastSeen              *time.Time
	LastPeer              string
	HasAmbiguous, HasPeer bool
}

// Check compares results with the expected usage of every permission and
// returns one line per difference: a permission missing, extra, or with
// other counts. AmbiguousFlows and LastPeer are compared only where the
// result has them (HasAmbiguous, HasPeer).
func (c *Corpus) Check(results []Result, ids IDs) []string {
	want := map[string]Rule{}
	for _, r := range c.Expected.Rules {
		want[r.id()] = r
	}
	var diffs []string
	seen := map[string]bool{}
	for _, res := range results {
		got := Rule{Source: res.Source, Rule: res.Rule, Peer: ids.Placeholders(res.Peer),
			Flows: res.Flows, Bytes: res.Bytes, AmbiguousFlows: res.AmbiguousFlows, LastPeer: res.LastPeer}
		if res.LastSeen != nil {
			s := res.LastSeen.UTC().Format(time.RFC3339)
			got.LastSeen = &s
		}
		id := got.id()
		w, ok := want[id]
		if !ok {
			diffs = append(diffs, "unexpected "+got.String())
			continue
		}
		if seen[id] {
			diffs = append(diffs, "twice "+got.String())
		}
		seen[id] = true
		if !res.HasAmbiguous {
			got.AmbiguousFlows = w.AmbiguousFlows
		}
		if !res.HasPeer {
			got.LastPeer = w.LastPeer
		}
		if got.String() != w.String() {
			diffs = append(diffs, fmt.Sprintf("got  %s\n    want %s", got, w))
		}
		if w.Flows > 0 && got.Flows == 0 {
			diffs = append(diffs, "FALSE UNUSED: "+id)
		}
	}
	for _, r := range c.Expected.Rules {
		if !seen[r.id()] {
			diffs = append(diffs, "missing "+r.String())
		}
	}
	return diffs
}

// Managed parses and expands the corpus's rule files with ids (groups
// referenced by Name tag resolve to ids["sg:NAME"]), giving the
// permissions made-up rule ids "sgr-…" in file and key order.
func (c *Corpus) Managed(ids IDs) ([]flowlog.Rule, error) {
	resolve := func(g rules.GroupRef) []string {
		if id := ids["sg:"+g.Tags["Name"]]; id != "" {
			return []string{id}
		}
		return nil
	}
	names := make([]string, 0, len(c.Rules))
	for n := range c.Rules {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []flowlog.Rule
	for _, n := range names {
		f, diags := rules.Parse(n, []byte(ids.Expand(c.Rules[n])))
		if diags.HasErrors() {
			return nil, diags.Err()
		}
		perms, _, diags := rules.Expand(f, n, resolve)
		if diags.HasErrors() {
			return nil, diags.Err()
		}
		for _, p := range perms {
			out = append(out, flowlog.Rule{Key: p.Key, RuleID: fmt.Sprintf("sgr-%017x", len(out)+1), Owner: p.Owner})
		}
	}
	return out, nil
}

// FromUsage converts a Usage for Check.
func FromUsage(u flowlog.Usage) Result {
	r := Result{Source: u.Owner.Source, Rule: u.Owner.Rule, Peer: u.Key.Peer.String(),
		Flows: u.Flows, Bytes: u.Bytes, AmbiguousFlows: u.AmbiguousFlows, HasAmbiguous: true, HasPeer: true}
	if !u.Last.IsZero() {
		last := u.Last
		r.LastSeen = &last
	}
	if u.LastPeer.IsValid() {
		r.LastPeer = u.LastPeer.String()
	}
	return r
}

// CheckStats compares the counts of a run with the expected ones.
func (c *Corpus) CheckStats(read flowlog.Stats, attr flowlog.AttributionStats) []string {
	var diffs []string
	w := c.Expected.Read
	if read.Objects != w.Objects || read.BadObjects != w.BadObjects || read.Accepted != w.Accepted ||
		read.Rejected != w.Rejected || read.Malformed != w.Malformed || read.NoData != w.NoData {
		diffs = append(diffs, fmt.Sprintf("read: objects=%d bad=%d accepted=%d rejected=%d malformed=%d nodata=%d, want %+v",
			read.Objects, read.BadObjects, read.Accepted, read.Rejected, read.Malformed, read.NoData, w))
	}
	wa := c.Expected.Attribution
	if attr.Credited != wa.Credited || attr.Unmatched != wa.Unmatched || attr.UnknownSide != wa.UnknownSide ||
		attr.NoManagedGroup != wa.NoManagedGroup || attr.UnknownInterface != wa.UnknownInterface {
		diffs = append(diffs, fmt.Sprintf("attribution %+v, want %+v", attr, wa))
	}
	return diffs
}
