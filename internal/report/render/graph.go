package render

import (
	"net/netip"
	"sort"
	"strings"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/pkg/rules"
)

// NodeKind is what a node of a reachability graph stands for.
type NodeKind string

const (
	// NodeGroup is a security group known by its id.
	NodeGroup NodeKind = "group"
	// NodeRef is a group reference by name or tags that was not resolved
	// (a graph drawn from files alone); its id is the reference text.
	NodeRef NodeKind = "ref"
	// NodeCIDR is an IPv4 or IPv6 CIDR peer.
	NodeCIDR NodeKind = "cidr"
	// NodePrefixList is a managed prefix list peer.
	NodePrefixList NodeKind = "prefix-list"
)

// Status of an edge in a plan's picture; empty in a plain graph.
type Status string

const (
	StatusAdded   Status = "added"
	StatusRemoved Status = "removed"
	StatusChanged Status = "changed"
)

// Node is one group or peer.
type Node struct {
	// ID is stable and unique: a group id, a reference text
	// ("tags:Name=web"), a CIDR or a prefix list id.
	ID    string   `json:"id"`
	Kind  NodeKind `json:"kind"`
	Label string   `json:"label"`
	// Name is a group's Name tag or group name, when known.
	Name string `json:"name,omitempty"`
	// World marks 0.0.0.0/0 and ::/0.
	World bool `json:"world,omitempty"`
}

// Edge is one permission: ingress rules point from the peer to the group,
// egress rules from the group to the peer.
type Edge struct {
	From      string          `json:"from"`
	To        string          `json:"to"`
	Direction rules.Direction `json:"direction"`
	Protocol  string          `json:"protocol"`
	FromPort  int32           `json:"fromPort"`
	ToPort    int32           `json:"toPort"`
	// Label is the protocol and ports as people read them ("tcp 443"),
	// with what changes in a plan ("tcp 80 → tcp 8080").
	Label string `json:"label"`
	// World marks ingress from 0.0.0.0/0 or ::/0.
	World bool `json:"world,omitempty"`
	// Status is set in a plan's picture.
	Status Status `json:"status,omitempty"`
	// Managed is "managed" or "unmanaged" in a live graph (tag
	// sgrules:managed=true), empty for a graph of the files.
	Managed     string   `json:"managed,omitempty"`
	Description string   `json:"description,omitempty"`
	Owners      []string `json:"owners,omitempty"`
	// Violations names the policy clauses the permission violates. Nothing
	// fills it yet; renderers highlight edges that have any.
	Violations []string `json:"violations,omitempty"`
	// Target is the account/region of the group when rule files name
	// targets; empty for the home target (the only one today).
	Target string `json:"target,omitempty"`
}

// Graph is who can reach whom: nodes sorted by id, edges sorted by
// endpoints and ports.
type Graph struct {
	Nodes []Node `json:"nodes"`
	Edges []Edge `json:"edges"`
	// MaybeSame are pairs of group nodes that may be one security group
	// spelled two ways, in a graph of the files that AWS did not resolve.
	MaybeSame []SameGroup `json:"maybeSame,omitempty"`
}

// SameGroup is two group nodes (A before B) that may be one security
// group: a Name tag and a group name that differ only by a "-sg" suffix
// or by case, say. The files cannot tell (only AWS can: graph --resolve),
// so the picture links them with a dotted "maybe the same group" line and
// --group follows the link.
type SameGroup struct {
	A string `json:"a"`
	B string `json:"b"`
}

// GraphBuilder collects edges and the nodes they need.
type GraphBuilder struct {
	// Names maps group ids to readable names, shown in labels.
	Names map[string]string
	nodes map[string]Node
	edges map[string]*Edge
}

// IsWorld reports whether a peer is the whole internet.
// It is the definition of pkg/rules: a CIDR covering the routable space
// of its family (0.0.0.0/0, ::/0, 2000::/3).
func IsWorld(p rules.Peer) bool {
	if p.Kind != rules.PeerCIDR4 && p.Kind != rules.PeerCIDR6 {
		return false
	}
	pfx, err := netip.ParsePrefix(p.Value)
	if err != nil {
		return false
	}
	_, ok := rules.WorldOpen([]netip.Prefix{pfx})
	return ok
}

// groupNode is the node of a group id or an unresolved reference text.
func (b *GraphBuilder) groupNode(id string) Node {
	if strings.HasPrefix(id, "sg-") {
		return Node{ID: id, Kind: NodeGroup, Label: Options{Names: b.Names}.Group(id), Name: b.Names[id]}
	}
	return Node{ID: id, Kind: NodeRef, Label: refLabel(id)}
}

// refLabel shortens a reference text for a label: "tags:Name=web" is
// "Name=web", "name:web-sg@vpc-1" is "web-sg@vpc-1".
func refLabel(ref string) string {
	if _, rest, ok := strings.Cut(ref, ":"); ok {
		return rest
	}
	return ref
}

func (b *GraphBuilder) peerNode(p rules.Peer) Node {
	switch p.Kind {
	case rules.PeerGroup:
		return b.groupNode(p.Value)
	case rules.PeerPrefixList:
		return Node{ID: p.Value, Kind: NodePrefixList, Label: p.Value}
	}
	return Node{ID: p.Value, Kind: NodeCIDR, Label: p.Value, World: IsWorld(p)}
}

// Add adds the edge of one permission (merging owners when the same
// permission is added twice) and returns it for the caller to annotate.
func (b *GraphBuilder) Add(k rules.Key, description string, owners ...string) *Edge {
	if b.nodes == nil {
		b.nodes, b.edges = map[string]Node{}, map[string]*Edge{}
	}
	g, p := b.groupNode(k.GroupID), b.peerNode(k.Peer)
	b.nodes[g.ID], b.nodes[p.ID] = g, p
	from, to := p.ID, g.ID
	if k.Direction == rules.Egress {
		from, to = g.ID, p.ID
	}
	id := k.String()
	if e, ok := b.edges[id]; ok {
		e.Owners = mergeSorted(e.Owners, owners)
		return e
	}
	e := &Edge{From: from, To: to, Direction: k.Direction, Protocol: k.Protocol, FromPort: k.FromPort, ToPort: k.ToPort,
		Label: report.Ports(k), World: k.Direction == rules.Ingress && IsWorld(k.Peer), Description: description,
		Owners: mergeSorted(nil, owners)}
	b.edges[id] = e
	return e
}

// addKeyed adds an edge under its own id (a plan may draw the same
// permission twice, e.g. removed and added back in another form).
func (b *GraphBuilder) addKeyed(id string, k rules.Key) *Edge {
	e := b.Add(k, "")
	delete(b.edges, k.String())
	b.edges[id] = e
	return e
}

func mergeSorted(a, b []string) []string {
	set := map[string]bool{}
	for _, s := range a {
		set[s] = true
	}
	for _, s := range b {
		set[s] = true
	}
	if len(set) == 0 {
		return nil
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Graph returns the graph, sorted.
func (b *GraphBuilder) Graph() Graph {
	g := Graph{Nodes: []Node{}, Edges: []Edge{}}
	for _, n := range b.nodes {
		g.Nodes = append(g.Nodes, n)
	}
	for _, e := range b.edges {
		g.Edges = append(g.Edges, *e)
	}
	g.sort()
	return g
}

// sortKey orders nodes for people: named groups by name, the rest by id.
func (n Node) sortKey() string {
	if n.Name != "" {
		return n.Name + "\x00" + n.ID
	}
	return n.ID
}

// sort orders nodes by sortKey and edges by their nodes' keys, then
// direction and ports: the order does not depend on random group ids when
// names are known.
func (g *Graph) sort() {
	sort.Slice(g.Nodes, func(i, j int) bool { return g.Nodes[i].sortKey() < g.Nodes[j].sortKey() })
	keys := make(map[string]string, len(g.Nodes))
	for _, n := range g.Nodes {
		keys[n.ID] = n.sortKey()
	}
	sort.SliceStable(g.Edges, func(i, j int) bool { return edgeLess(g.Edges[i], g.Edges[j], keys) })
}

func edgeLess(a, b Edge, keys map[string]string) bool {
	if a.To != b.To {
		return keys[a.To] < keys[b.To]
	}
	if a.From != b.From {
		return keys[a.From] < keys[b.From]
	}
	if a.Direction != b.Direction {
		return a.Direction < b.Direction
	}
	if a.Protocol != b.Protocol {
		return a.Protocol < b.Protocol
	}
	if a.FromPort != b.FromPort {
		return a.FromPort < b.FromPort
	}
	if a.ToPort != b.ToPort {
		return a.ToPort < b.ToPort
	}
	if a.Status != b.Status {
		return a.Status < b.Status
	}
	return a.Label < b.Label
}

// GraphOfPermissions draws declared permissions (from rule files; group
// references that were not resolved keep their reference text as id).
// One group is one node when the files equate its spellings (a group id
// with or without its account); spellings only AWS could equate (a Name
// tag, a group name, an id whose name is unknown) stay apart, and those
// whose names match are flagged in MaybeSame.
func GraphOfPermissions(perms []rules.Permission, names map[string]string) Graph {
	b := &GraphBuilder{Names: names}
	for _, p := range perms {
		b.Add(p.Key, p.Description, p.Owner.String())
	}
	g := b.Graph()
	g.MaybeSame = maybeSame(g.Nodes)
	return g
}

// groupBaseName is the name a group node goes by, for matching
// spellings: the Name tag of a tags reference, the group name of a name
// reference, a resolved group's name; lower case, without a "-sg" or
// "_sg" suffix. "" when the node has none.
func groupBaseName(n Node) string {
	var name string
	switch {
	case n.Kind == NodeRef && strings.HasPrefix(n.ID, "tags:"):
		for _, kv := range strings.Split(strings.TrimPrefix(n.ID, "tags:"), ",") {
			if v, ok := strings.CutPrefix(kv, "Name="); ok {
				name = v
			}
		}
	case n.Kind == NodeRef && strings.HasPrefix(n.ID, "name:"):
		name, _, _ = strings.Cut(strings.TrimPrefix(n.ID, "name:"), "@")
	case n.Kind == NodeGroup:
		name = n.Name
	}
	name = strings.ToLower(strings.TrimSpace(name))
	for _, suffix := range []string{"-sg", "_sg", "-security-group", "_security_group"} {
		if t, ok := strings.CutSuffix(name, suffix); ok && t != "" {
			name = t
			break
		}
	}
	return name
}

// maybeSame pairs the group nodes that go by the same base name, each
// with the first of its kind (nodes in graph order).
func maybeSame(nodes []Node) []SameGroup {
	first := map[string]string{}
	var out []SameGroup
	for _, n := range nodes {
		base := groupBaseName(n)
		if base == "" {
			continue
		}
		f, ok := first[base]
		if !ok {
			first[base] = n.ID
			continue
		}
		a, b := f, n.ID
		if b < a {
			a, b = b, a
		}
		out = append(out, SameGroup{A: a, B: b})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].A != out[j].A {
			return out[i].A < out[j].A
		}
		return out[i].B < out[j].B
	})
	return out
}

// GraphOfRules draws the rules EC2 has, marking each managed or
// unmanaged. Managed means in this deployment's ledger: owned holds the
// rule ids the ledger records (created and adopted alike). Without a
// ledger (owned nil) a rule is marked by its tags alone, as "tagged by
// sgrules" or not, which cannot tell adopted rules from hand-made ones.
func GraphOfRules(actual []reconcile.ActualRule, names map[string]string, owned map[string]bool) Graph {
	b := &GraphBuilder{Names: names}
	for _, a := range actual {
		e := b.Add(a.Key, a.Description)
		e.Managed = "unmanaged"
		switch {
		case owned != nil && owned[a.RuleID]:
			e.Managed = "managed"
		case owned == nil && (a.Tags[reconcile.TagManaged] == "true" || a.Tags[reconcile.TagLedger] != ""):
			e.Managed = "managed"
		}
	}
	return b.Graph()
}

// Node returns the node with an id.
func (g Graph) Node(id string) (Node, bool) {
	for _, n := range g.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return Node{}, false
}

// FindGroup returns the ids of the group nodes a --group value names: a
// node id ("sg-…", "tags:Name=db"), or a Name tag / group name ("db"), as
// in a label "sg-… (db)" or a reference "tags:Name=db".
func (g Graph) FindGroup(value string) []string {
	if n, ok := g.Node(value); ok && (n.Kind == NodeGroup || n.Kind == NodeRef) {
		return []string{n.ID}
	}
	var out []string
	for _, n := range g.Nodes {
		switch {
		case n.Kind == NodeRef && (n.ID == "tags:Name="+value || strings.HasPrefix(n.ID, "name:"+value+"@")):
			out = append(out, n.ID)
		case n.Kind == NodeGroup && n.Name == value:
			out = append(out, n.ID)
		}
	}
	return out
}

// Reaching keeps what can reach the groups: their ingress edges, and,
// transitively, the ingress edges of every group that is a source of a
// kept edge. Egress rules are not followed (they do not open a group to
// anyone).
func (g Graph) Reaching(groups ...string) Graph {
	in := map[string]bool{}
	queue := append([]string(nil), groups...)
	for _, id := range groups {
		in[id] = true
	}
	byTo := map[string][]Edge{}
	for _, e := range g.Edges {
		if e.Direction == rules.Ingress {
			byTo[e.To] = append(byTo[e.To], e)
		}
	}
	kinds := make(map[string]NodeKind, len(g.Nodes))
	for _, n := range g.Nodes {
		kinds[n.ID] = n.Kind
	}
	// A group that may be the same as a reached one is reached too: the
	// picture must not hide a path because a group was spelled two ways.
	same := map[string][]SameGroup{}
	for _, p := range g.MaybeSame {
		same[p.A] = append(same[p.A], p)
		same[p.B] = append(same[p.B], p)
	}
	out := Graph{Nodes: []Node{}, Edges: []Edge{}}
	keep := map[string]bool{}
	keptSame := map[SameGroup]bool{}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		keep[id] = true
		for _, p := range same[id] {
			other := p.A
			if other == id {
				other = p.B
			}
			if !keptSame[p] {
				keptSame[p] = true
				out.MaybeSame = append(out.MaybeSame, p)
			}
			if !in[other] {
				in[other] = true
				queue = append(queue, other)
			}
		}
		for _, e := range byTo[id] {
			out.Edges = append(out.Edges, e)
			keep[e.From] = true
			if k := kinds[e.From]; (k == NodeGroup || k == NodeRef) && !in[e.From] {
				in[e.From] = true
				queue = append(queue, e.From)
			}
		}
	}
	for _, n := range g.Nodes {
		if keep[n.ID] {
			out.Nodes = append(out.Nodes, n)
		}
	}
	out.sort()
	sort.Slice(out.MaybeSame, func(i, j int) bool {
		if out.MaybeSame[i].A != out.MaybeSame[j].A {
			return out.MaybeSame[i].A < out.MaybeSame[j].A
		}
		return out.MaybeSame[i].B < out.MaybeSame[j].B
	})
	return out
}
