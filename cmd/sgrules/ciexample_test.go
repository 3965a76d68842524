package main

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sgrules/sgrules/internal/adapters/s3source"
)

// The example pull-request workflow checks the rule files against the
// guardrail policy in force (the bucket's, read with the plan role), in
// validate and in plan, so reviewers see violations before merge; the
// plan role of docs/pull-requests.md may read it.
func TestPullRequestWorkflowChecksThePolicy(t *testing.T) {
	b, err := os.ReadFile("../../examples/ci/pull-request-plan.yml")
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		Jobs map[string]struct {
			Steps []struct {
				Name string `yaml:"name"`
				Uses string `yaml:"uses"`
				Run  string `yaml:"run"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(b, &wf); err != nil {
		t.Fatal(err)
	}
	fetched, creds := -1, -1
	for i, st := range wf.Jobs["plan"].Steps {
		if strings.HasPrefix(st.Uses, "aws-actions/configure-aws-credentials") {
			creds = i
		}
		if strings.Contains(st.Run, "s3://") && strings.Contains(st.Run, "POLICY_KEY") {
			fetched = i
		}
		for _, line := range strings.Split(st.Run, "\n") {
			line = strings.TrimSpace(line)
			for _, cmd := range []string{"sgrules validate ", "sgrules plan "} {
				if !strings.HasPrefix(line, cmd) {
					continue
				}
				if !strings.Contains(line, "--policy ") {
					t.Errorf("step %q runs %swithout --policy: %s", st.Name, cmd, line)
				}
				if fetched < 0 || fetched > i {
					t.Errorf("step %q runs %sbefore the policy is fetched", st.Name, cmd)
				}
			}
		}
	}
	if creds < 0 || fetched < creds {
		t.Errorf("the policy is fetched (step %d) without the plan role's credentials (step %d)", fetched, creds)
	}
	doc, err := os.ReadFile("../../docs/pull-requests.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), `"Resource": "arn:aws:s3:::RULES_BUCKET/policy/*"`) {
		t.Error("the plan role of docs/pull-requests.md cannot read policy/")
	}
}

// The example workflow's upload step tags every rule file with the commit
// it comes from (the metadata s3source reads), so the rules' history
// names the commit of each change.
func TestPullRequestWorkflowUploadsTheCommit(t *testing.T) {
	b, err := os.ReadFile("../../examples/ci/pull-request-plan.yml")
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		Jobs map[string]struct {
			Steps []struct {
				Run string `yaml:"run"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(b, &wf); err != nil {
		t.Fatal(err)
	}
	for _, st := range wf.Jobs["upload"].Steps {
		if strings.Contains(st.Run, "aws s3 sync") {
			if !strings.Contains(st.Run, `--metadata "`+s3source.CommitMetadata+`=$GITHUB_SHA"`) {
				t.Errorf("the upload does not set %s:\n%s", s3source.CommitMetadata, st.Run)
			}
			return
		}
	}
	t.Error("no aws s3 sync in the upload job")
}
