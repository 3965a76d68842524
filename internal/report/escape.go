package report

import "strings"

// One escaping function per output language. Text from rule files, tags
// and descriptions is data: in no output may it act as markup, a
// directive, a mention or a link. Every writer of Markdown, Mermaid, DOT
// or GitHub workflow commands goes through these.

var markdownCell = strings.NewReplacer(`\`, `\\`, "|", `\|`, "\n", " ", "\r", "", "<", "&lt;", ">", "&gt;",
	"*", `\*`, "_", `\_`, "`", "\\`", "[", `\[`, "]", `\]`,
	"@", "@\u2060", "://", ":\u2060//", "www.", "www\u2060.")

// MarkdownCell escapes text for a Markdown table cell (or any inline
// Markdown). Text from rule files and tags must not act in the comment: a
// word joiner (U+2060) after "@" and in "://" and "www." keeps GitHub from
// turning it into a mention or a link.
func MarkdownCell(s string) string {
	return markdownCell.Replace(s)
}

// MarkdownCode is inline code, or escaped text (MarkdownCell) when s has
// a backtick, a pipe or a line break; "" stays "".
func MarkdownCode(s string) string {
	if s == "" {
		return ""
	}
	if strings.ContainsAny(s, "`|\n") {
		return MarkdownCell(s)
	}
	return "`" + s + "`"
}

var mermaidLabel = strings.NewReplacer("#", "#35;", "%", "#37;", `"`, "#quot;", "<", "#lt;", ">", "#gt;", "\n", " ", "\r", " ", "|", "#124;")

// MermaidLabel escapes a label for a quoted Mermaid string: quotes, '#'
// (which starts an entity), '%' (which starts a directive such as
// %%{init: …}%%, read anywhere in the text), angle brackets, pipes and
// line breaks cannot appear as they are.
func MermaidLabel(s string) string {
	return mermaidLabel.Replace(s)
}

var dotLabel = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", "")

// DOTLabel quotes a string for Graphviz: a double-quoted ID.
func DOTLabel(s string) string {
	return `"` + dotLabel.Replace(s) + `"`
}

var (
	workflowData     = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")
	workflowProperty = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C")
)

// WorkflowData escapes the message of a GitHub Actions workflow command
// (::error file=…::MESSAGE).
func WorkflowData(s string) string { return workflowData.Replace(s) }

// WorkflowProperty escapes a property value of a GitHub Actions workflow
// command (file=VALUE,line=…).
func WorkflowProperty(s string) string { return workflowProperty.Replace(s) }
