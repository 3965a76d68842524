package bench

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/pkg/rules"
)

func ecClient(w *world) *ec2.Client { return ec2.NewFromConfig(w.counted) }

// runConcurrency authorizes RulesPerGroup ingress rules into each of g
// groups (one call per group) and revokes them again, first with one
// goroutine, then with workers; best of two rounds each.
func runConcurrency(ctx context.Context, url string, g, workers int) (*Concurrency, error) {
	w, err := newWorld(ctx, url, g)
	if err != nil {
		return nil, err
	}
	c := ec2sg.New(ec2.NewFromConfig(w.raw))
	perms := make([][]rules.Permission, g)
	for gi, id := range w.groups {
		for j := range RulesPerGroup {
			k := rules.Key{GroupID: id, Direction: rules.Ingress, Protocol: rules.ProtoTCP, FromPort: int32(1000 + j), ToPort: int32(1000 + j),
				Peer: rules.Peer{Kind: rules.PeerCIDR4, Value: netip.MustParsePrefix(fmt.Sprintf("10.1.%d.0/24", j)).String()}}
			perms[gi] = append(perms[gi], rules.Permission{Key: k, Description: "concurrency"})
		}
	}
	each := func(n int, fn func(gi int) error) (time.Duration, error) {
		t0 := time.Now()
		sem := make(chan struct{}, n)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var first error
		for gi := range w.groups {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if err := fn(gi); err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return time.Since(t0), first
	}
	authorize := func(gi int) error {
		return c.Authorize(ctx, w.groups[gi], rules.Ingress, perms[gi], map[string]string{"sgrules:managed": "true"})
	}
	revoke := func(gi int) error {
		rs, err := c.DescribeRules(ctx, []string{w.groups[gi]})
		if err != nil {
			return err
		}
		var ids []string
		for _, r := range rs {
			if r.Key.Direction == rules.Ingress {
				ids = append(ids, r.RuleID)
			}
		}
		return c.Revoke(ctx, w.groups[gi], rules.Ingress, ids)
	}
	out := &Concurrency{Groups: g, RulesPerGroup: RulesPerGroup, Workers: workers}
	best := func(cur *float64, d time.Duration) {
		ms := float64(d.Microseconds()) / 1000
		if *cur == 0 || ms < *cur {
			*cur = ms
		}
	}
	for range 2 {
		for _, n := range []int{1, workers} {
			da, err := each(n, authorize)
			if err != nil {
				return nil, err
			}
			dr, err := each(n, revoke)
			if err != nil {
				return nil, err
			}
			if n == 1 {
				best(&out.SeqAuthorizeMS, da)
				best(&out.SeqRevokeMS, dr)
			} else {
				best(&out.ConcAuthorizeMS, da)
				best(&out.ConcRevokeMS, dr)
			}
		}
	}
	out.SeqPerCallMS = out.SeqAuthorizeMS / float64(g)
	out.ConcPerCallMS = out.ConcAuthorizeMS / float64(g)
	out.SpeedupAuthorize = out.SeqAuthorizeMS / out.ConcAuthorizeMS
	out.SpeedupRevoke = out.SeqRevokeMS / out.ConcRevokeMS
	return out, nil
}
