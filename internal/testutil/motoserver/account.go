package motoserver

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// AsAccount returns cfg acting in another account: moto keeps accounts
// apart by the credentials of an assumed role, so this assumes role (a
// role name) in account and returns a copy of cfg with those credentials.
// It is how tests reach a target account, never a fake STS.
func AsAccount(tb testing.TB, cfg aws.Config, account, role string) aws.Config {
	tb.Helper()
	out, err := sts.NewFromConfig(cfg).AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn: aws.String("arn:aws:iam::" + account + ":role/" + role), RoleSessionName: aws.String("test")})
	if err != nil {
		tb.Fatalf("assume %s in %s: %v", role, account, err)
	}
	c := out.Credentials
	acct := cfg.Copy()
	acct.Credentials = credentials.NewStaticCredentialsProvider(*c.AccessKeyId, *c.SecretAccessKey, *c.SessionToken)
	return acct
}
