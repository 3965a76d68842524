package handler

import (
	"encoding/json"
	"io"
	"time"
)

// MetricNamespace is the CloudWatch namespace of sgrules' metrics.
const MetricNamespace = "sgrules"

// writeMetric writes one CloudWatch embedded metric format line (no
// dimensions): CloudWatch Logs turns it into a metric, with no PutMetricData
// call or permission.
func writeMetric(w io.Writer, name string, value int) {
	type metric struct {
		Name string `json:"Name"`
		Unit string `json:"Unit"`
	}
	type directive struct {
		Namespace  string     `json:"Namespace"`
		Dimensions [][]string `json:"Dimensions"`
		Metrics    []metric   `json:"Metrics"`
	}
	line, err := json.Marshal(map[string]any{
		"_aws": map[string]any{
			"Timestamp": time.Now().UnixMilli(),
			"CloudWatchMetrics": []directive{{
				Namespace:  MetricNamespace,
				Dimensions: [][]string{{}},
				Metrics:    []metric{{Name: name, Unit: "Count"}},
			}},
		},
		name: value,
	})
	if err != nil {
		return
	}
	_, _ = w.Write(append(line, '\n'))
}
