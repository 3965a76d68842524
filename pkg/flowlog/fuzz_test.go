package flowlog

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReader: reading any bytes never panics, every line after the header
// is returned, skipped as NODATA/SKIPDATA or counted as malformed, and a
// returned record is accepted or rejected, with its interface and both
// addresses. Seeded from the corpus logs; found inputs live in
// testdata/fuzz/FuzzReader.
func FuzzReader(f *testing.F) {
	paths, _ := filepath.Glob("testdata/corpus/logs/*")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(DefaultFormat + "\n2 1 eni-a 10.0.0.1 ::1 1 2 6 1 1 1 2 ACCEPT OK\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rd, err := NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		var n int64
		for {
			rec, err := rd.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && rd.Stats().Records != n {
					t.Fatalf("records %d, returned %d", rd.Stats().Records, n)
				}
				break
			}
			n++
			if rec.Interface == "" || !rec.Src.IsValid() || !rec.Dst.IsValid() || (rec.Action != ActionAccept && rec.Action != ActionReject) {
				t.Fatalf("record %+v", *rec)
			}
			ag := NewAggregator(zeroTime, zeroTime)
			ag.Add(rec)
		}
		st := rd.Stats()
		if st.Records != n || st.Records+st.NoData+st.SkipData+st.Malformed != st.Lines {
			t.Fatalf("stats %+v, returned %d", st, n)
		}
	})
}
