package report

import "testing"

func TestEscape(t *testing.T) {
	tests := []struct {
		name, in, want string
		f              func(string) string
	}{
		{"markdown pipe and newline", "a|b\nc", `a\|b c`, MarkdownCell},
		{"markdown mention", "@octocat", "@\u2060octocat", MarkdownCell},
		{"markdown autolink", "https://x.example www.y.example", "https:\u2060//x.example www\u2060.y.example", MarkdownCell},
		{"markdown html", "<img src=x>", "&lt;img src=x&gt;", MarkdownCell},
		{"markdown code", "rules/web.yaml#https", "`rules/web.yaml#https`", MarkdownCode},
		{"markdown code with backtick", "a`b", "a\\`b", MarkdownCode},
		{"mermaid directive", `web"]` + "\n" + `%%{init: {'theme':'dark'}}%%`, "web#quot;] #37;#37;{init: {'theme':'dark'}}#37;#37;", MermaidLabel},
		{"mermaid entity and pipe", "#1 | <b>", "#35;1 #124; #lt;b#gt;", MermaidLabel},
		{"dot quote", `a "b"` + "\n" + `c\`, `"a \"b\"\nc\\"`, DOTLabel},
		{"workflow data", "50% done\nnext", "50%25 done%0Anext", WorkflowData},
		{"workflow property", "a:b,c", "a%3Ab%2Cc", WorkflowProperty},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.f(tc.in); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
