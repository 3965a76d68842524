package expirysched

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"
)

// API is the part of the EventBridge Scheduler client a Scheduler uses.
type API interface {
	GetSchedule(ctx context.Context, in *scheduler.GetScheduleInput, optFns ...func(*scheduler.Options)) (*scheduler.GetScheduleOutput, error)
	CreateSchedule(ctx context.Context, in *scheduler.CreateScheduleInput, optFns ...func(*scheduler.Options)) (*scheduler.CreateScheduleOutput, error)
	UpdateSchedule(ctx context.Context, in *scheduler.UpdateScheduleInput, optFns ...func(*scheduler.Options)) (*scheduler.UpdateScheduleOutput, error)
	DeleteSchedule(ctx context.Context, in *scheduler.DeleteScheduleInput, optFns ...func(*scheduler.Options)) (*scheduler.DeleteScheduleOutput, error)
}

var _ API = (*scheduler.Client)(nil)

// DefaultGroup is the schedule group EXPIRY_SCHEDULE_GROUP defaults to.
const DefaultGroup = "sgrules"

// Config says where the schedules go and what they invoke.
type Config struct {
	// Group is the schedule group (EXPIRY_SCHEDULE_GROUP; "": DefaultGroup).
	Group string
	// TargetARN is the drift function's ARN (EXPIRY_TARGET_ARN).
	TargetARN string
	// RoleARN is the role EventBridge Scheduler assumes to invoke it
	// (EXPIRY_ROLE_ARN).
	RoleARN string
}

// Scheduler keeps the expiry schedules.
type Scheduler struct {
	api API
	cfg Config
}

// New returns a Scheduler on api. TargetARN and RoleARN are required.
func New(api API, cfg Config) (*Scheduler, error) {
	if cfg.TargetARN == "" || cfg.RoleARN == "" {
		return nil, errors.New("expirysched: TargetARN and RoleARN are required")
	}
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	return &Scheduler{api: api, cfg: cfg}, nil
}

// Name is the schedule of a target: sgrules-expiry-ACCOUNT-REGION (at
// most 64 characters of [0-9A-Za-z-], as Scheduler allows).
func Name(account, region string) string {
	return "sgrules-expiry-" + account + "-" + region
}

// Expression is the one-time schedule expression for a deadline: its
// minute in UTC, rounded up. Scheduler fires within the minute named
// (60 s precision), so never before the deadline.
func Expression(deadline time.Time) string {
	at := deadline.UTC()
	if t := at.Truncate(time.Minute); !t.Equal(at) {
		at = t.Add(time.Minute)
	}
	return "at(" + at.Format("2006-01-02T15:04:05") + ")"
}

// Input is the payload the schedule sends the drift function: the sweep
// message of one target, {"sweep":{"account":…,"region":…}}.
func Input(account, region string) string {
	b, _ := json.Marshal(map[string]map[string]string{"sweep": {"account": account, "region": region}})
	return string(b)
}

// Keep makes the target's schedule fire at deadline (see Expression), or
// deletes it when deadline is zero. It changes nothing when the schedule
// is already as wanted.
func (s *Scheduler) Keep(ctx context.Context, account, region string, deadline time.Time) error {
	name := Name(account, region)
	var err error
	// A concurrent writer may create or delete the schedule between the
	// read and the write: read again, a few times.
	for range 3 {
		if err = s.keep(ctx, name, account, region, deadline); !errors.Is(err, errRace) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("schedule %s/%s: %w", s.cfg.Group, name, err)
	}
	return nil
}

var errRace = errors.New("schedule changed concurrently")

func (s *Scheduler) keep(ctx context.Context, name, account, region string, deadline time.Time) error {
	cur, err := s.api.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String(name), GroupName: aws.String(s.cfg.Group)})
	found := err == nil
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("get: %w", err)
	}
	if deadline.IsZero() {
		if !found {
			return nil
		}
		_, err := s.api.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String(name), GroupName: aws.String(s.cfg.Group)})
		if err != nil && !isNotFound(err) {
			return fmt.Errorf("delete: %w", err)
		}
		return nil
	}
	expr := Expression(deadline)
	target := &types.Target{Arn: aws.String(s.cfg.TargetARN), RoleArn: aws.String(s.cfg.RoleARN), Input: aws.String(Input(account, region))}
	desc := fmt.Sprintf("sgrules: sweep account %s region %s at the earliest deadline of its rules", account, region)
	window := &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff}
	if !found {
		_, err := s.api.CreateSchedule(ctx, &scheduler.CreateScheduleInput{
			Name: aws.String(name), GroupName: aws.String(s.cfg.Group), Description: aws.String(desc),
			ScheduleExpression: aws.String(expr), ScheduleExpressionTimezone: aws.String("UTC"),
			FlexibleTimeWindow: window, Target: target, State: types.ScheduleStateEnabled,
			ActionAfterCompletion: types.ActionAfterCompletionDelete,
		})
		var conflict *types.ConflictException
		if errors.As(err, &conflict) {
			return fmt.Errorf("create: %w: %w", errRace, err)
		}
		if err != nil {
			return fmt.Errorf("create: %w", err)
		}
		return nil
	}
	if same(cur, expr, target) {
		return nil
	}
	_, err = s.api.UpdateSchedule(ctx, &scheduler.UpdateScheduleInput{
		Name: aws.String(name), GroupName: aws.String(s.cfg.Group), Description: aws.String(desc),
		ScheduleExpression: aws.String(expr), ScheduleExpressionTimezone: aws.String("UTC"),
		FlexibleTimeWindow: window, Target: target, State: types.ScheduleStateEnabled,
		ActionAfterCompletion: types.ActionAfterCompletionDelete,
	})
	if isNotFound(err) {
		return fmt.Errorf("update: %w: %w", errRace, err)
	}
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	return nil
}

// same tells whether the schedule read is the one wanted.
func same(cur *scheduler.GetScheduleOutput, expr string, want *types.Target) bool {
	t := cur.Target
	return t != nil && aws.ToString(cur.ScheduleExpression) == expr &&
		aws.ToString(cur.ScheduleExpressionTimezone) == "UTC" &&
		cur.State == types.ScheduleStateEnabled &&
		cur.ActionAfterCompletion == types.ActionAfterCompletionDelete &&
		cur.FlexibleTimeWindow != nil && cur.FlexibleTimeWindow.Mode == types.FlexibleTimeWindowModeOff &&
		aws.ToString(t.Arn) == aws.ToString(want.Arn) &&
		aws.ToString(t.RoleArn) == aws.ToString(want.RoleArn) &&
		aws.ToString(t.Input) == aws.ToString(want.Input)
}

func isNotFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}
