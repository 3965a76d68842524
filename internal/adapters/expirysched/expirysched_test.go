package expirysched_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/sgrules/sgrules/internal/adapters/expirysched"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
)

func TestMain(m *testing.M) { motoserver.Main(m) }

// counting passes calls to moto and counts them by operation.
type counting struct {
	expirysched.API
	mu    sync.Mutex
	calls []string
	// beforeUpdate, when set, runs before an update is passed on.
	beforeUpdate func()
}

func (c *counting) note(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, op)
}

func (c *counting) writes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(c.calls), func(op string) bool { return op == "get" })
}

func (c *counting) GetSchedule(ctx context.Context, in *scheduler.GetScheduleInput, o ...func(*scheduler.Options)) (*scheduler.GetScheduleOutput, error) {
	c.note("get")
	return c.API.GetSchedule(ctx, in, o...)
}

func (c *counting) CreateSchedule(ctx context.Context, in *scheduler.CreateScheduleInput, o ...func(*scheduler.Options)) (*scheduler.CreateScheduleOutput, error) {
	c.note("create")
	return c.API.CreateSchedule(ctx, in, o...)
}

func (c *counting) UpdateSchedule(ctx context.Context, in *scheduler.UpdateScheduleInput, o ...func(*scheduler.Options)) (*scheduler.UpdateScheduleOutput, error) {
	c.note("update")
	if c.beforeUpdate != nil {
		c.beforeUpdate()
	}
	return c.API.UpdateSchedule(ctx, in, o...)
}

func (c *counting) DeleteSchedule(ctx context.Context, in *scheduler.DeleteScheduleInput, o ...func(*scheduler.Options)) (*scheduler.DeleteScheduleOutput, error) {
	c.note("delete")
	return c.API.DeleteSchedule(ctx, in, o...)
}

const (
	account   = "123456789012"
	region    = "eu-west-1"
	targetARN = "arn:aws:lambda:us-east-1:123456789012:function:sgrules-drift"
	roleARN   = "arn:aws:iam::123456789012:role/sgrules-expiry-scheduler"
)

func setup(t *testing.T) (*scheduler.Client, *counting, *expirysched.Scheduler) {
	t.Helper()
	srv := motoserver.Shared(t)
	srv.Reset(t)
	api := scheduler.NewFromConfig(srv.Config(t))
	if _, err := api.CreateScheduleGroup(context.Background(), &scheduler.CreateScheduleGroupInput{Name: aws.String("sgrules")}); err != nil {
		t.Fatal(err)
	}
	c := &counting{API: api}
	s, err := expirysched.New(c, expirysched.Config{TargetARN: targetARN, RoleARN: roleARN})
	if err != nil {
		t.Fatal(err)
	}
	return api, c, s
}

func get(t *testing.T, api *scheduler.Client) (*scheduler.GetScheduleOutput, bool) {
	t.Helper()
	out, err := api.GetSchedule(context.Background(), &scheduler.GetScheduleInput{
		Name: aws.String(expirysched.Name(account, region)), GroupName: aws.String("sgrules")})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return out, true
}

func TestKeepCreatesMovesAndDeletes(t *testing.T) {
	api, c, s := setup(t)
	ctx := context.Background()
	first := time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)

	if err := s.Keep(ctx, account, region, first); err != nil {
		t.Fatal(err)
	}
	got, ok := get(t, api)
	if !ok {
		t.Fatal("no schedule after Keep")
	}
	if e := aws.ToString(got.ScheduleExpression); e != "at(2026-12-07T18:00:00)" {
		t.Errorf("expression %q", e)
	}
	if tz := aws.ToString(got.ScheduleExpressionTimezone); tz != "UTC" {
		t.Errorf("timezone %q", tz)
	}
	if got.ActionAfterCompletion != types.ActionAfterCompletionDelete {
		t.Errorf("action after completion %q", got.ActionAfterCompletion)
	}
	if got.FlexibleTimeWindow == nil || got.FlexibleTimeWindow.Mode != types.FlexibleTimeWindowModeOff {
		t.Errorf("flexible time window %+v", got.FlexibleTimeWindow)
	}
	if aws.ToString(got.Target.Arn) != targetARN || aws.ToString(got.Target.RoleArn) != roleARN {
		t.Errorf("target %s role %s", aws.ToString(got.Target.Arn), aws.ToString(got.Target.RoleArn))
	}
	var in struct {
		Sweep map[string]string `json:"sweep"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(got.Target.Input)), &in); err != nil || in.Sweep["account"] != account || in.Sweep["region"] != region {
		t.Errorf("input %s (%v)", aws.ToString(got.Target.Input), err)
	}

	// Again with the same deadline: nothing written.
	if err := s.Keep(ctx, account, region, first); err != nil {
		t.Fatal(err)
	}
	// Later, with a deadline in another time zone: moved.
	later := time.Date(2026, 12, 7, 20, 30, 0, 0, time.FixedZone("+01:00", 3600))
	if err := s.Keep(ctx, account, region, later); err != nil {
		t.Fatal(err)
	}
	if got, _ := get(t, api); aws.ToString(got.ScheduleExpression) != "at(2026-12-07T19:30:00)" {
		t.Errorf("moved expression %q", aws.ToString(got.ScheduleExpression))
	}
	// No deadline: deleted; twice: nothing more.
	for range 2 {
		if err := s.Keep(ctx, account, region, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := get(t, api); ok {
		t.Error("schedule left after Keep with no deadline")
	}
	if w := c.writes(); !slices.Equal(w, []string{"create", "update", "delete"}) {
		t.Errorf("writes %v, want create, update, delete", w)
	}
}

// A schedule deleted between the read and the update (it fired, or
// another invocation removed it) is created again.
func TestKeepRecreatesScheduleGoneUnderIt(t *testing.T) {
	api, c, s := setup(t)
	ctx := context.Background()
	if err := s.Keep(ctx, account, region, time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	c.beforeUpdate = func() {
		c.beforeUpdate = nil
		if _, err := api.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{
			Name: aws.String(expirysched.Name(account, region)), GroupName: aws.String("sgrules")}); err != nil {
			t.Error(err)
		}
	}
	if err := s.Keep(ctx, account, region, time.Date(2026, 12, 7, 19, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	got, ok := get(t, api)
	if !ok || aws.ToString(got.ScheduleExpression) != "at(2026-12-07T19:00:00)" {
		t.Fatalf("schedule %v %+v", ok, got)
	}
}

func TestKeepNamesItsGroup(t *testing.T) {
	_, _, s := setup(t)
	err := s.Keep(context.Background(), account, "us-east-2", time.Time{})
	if err != nil {
		t.Fatalf("deleting an absent schedule: %v", err)
	}
	s2, _ := expirysched.New(scheduler.NewFromConfig(motoserver.Shared(t).Config(t)), expirysched.Config{Group: "missing", TargetARN: targetARN, RoleARN: roleARN})
	err = s2.Keep(context.Background(), account, region, time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC))
	if err == nil {
		t.Fatal("no error creating in a missing group")
	}
}

func TestExpression(t *testing.T) {
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC), "at(2026-12-07T18:00:00)"},
		{time.Date(2026, 12, 7, 18, 0, 1, 0, time.UTC), "at(2026-12-07T18:01:00)"},
		{time.Date(2026, 12, 7, 18, 0, 0, 1, time.UTC), "at(2026-12-07T18:01:00)"},
		{time.Date(2026, 12, 31, 23, 59, 30, 0, time.UTC), "at(2027-01-01T00:00:00)"},
		{time.Date(2026, 12, 8, 0, 30, 0, 0, time.FixedZone("", 3600)), "at(2026-12-07T23:30:00)"},
	} {
		if got := expirysched.Expression(tc.at); got != tc.want {
			t.Errorf("Expression(%s) = %s, want %s", tc.at, got, tc.want)
		}
	}
}

func TestName(t *testing.T) {
	n := expirysched.Name("123456789012", "ap-southeast-4")
	if n != "sgrules-expiry-123456789012-ap-southeast-4" || len(n) > 64 {
		t.Errorf("name %q", n)
	}
}
