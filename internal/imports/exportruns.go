package imports

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"
)

// ExportRun is where a Cost Management export put a file: in the folder of
// the period it covers, PREFIX/20260101-20260131/, either as a run of its
// own (the exports of before 2024, EXPORT_RUNID.csv) or in the folder of a
// run (RUNID/part_0_0001.csv.gz, beside the run's manifest.json). Each run
// of a month-to-date export holds the whole month so far, revised.
type ExportRun struct {
	// Period is the period's folder, PREFIX/20260101-20260131, and Start
	// and End its first and last days.
	Period     string
	Start, End time.Time
	// Run is the run's file, or its folder when InFolder.
	Run      string
	InFolder bool
}

// exportPeriod is the folder of an export's period: 20260101-20260131.
var exportPeriod = regexp.MustCompile(`^(\d{8})-(\d{8})$`)

// exportPart is the name of a part of a run's files: part_0_0001.csv.gz.
var exportPart = regexp.MustCompile(`(?i)^part_\d+_\d+\.csv(\.gz)?$`)

// PlaceInExport reads the place of a file in a Cost Management export
// from its name, with slashes; ok is false for a file in no period's
// folder. The period's folder is the last folder so named, the nearest
// the file: one above the export may be named so too. Parts written
// straight into the period's folder are of one run.
func PlaceInExport(name string) (ExportRun, bool) {
	segs := strings.Split(name, "/")
	p := len(segs) - 2
	for p >= 0 && !exportPeriod.MatchString(segs[p]) {
		p--
	}
	if p < 0 {
		return ExportRun{}, false
	}
	m := exportPeriod.FindStringSubmatch(segs[p])
	start, err1 := time.Parse("20060102", m[1])
	end, err2 := time.Parse("20060102", m[2])
	if err1 != nil || err2 != nil {
		return ExportRun{}, false
	}
	r := ExportRun{Period: path.Join(segs[:p+1]...), Start: start, End: end, Run: name, InFolder: p+2 < len(segs)}
	switch {
	case r.InFolder:
		r.Run = path.Join(segs[:p+2]...)
	case exportPart.MatchString(segs[p+1]):
		r.Run = r.Period + "/"
	}
	return r, true
}

// oneRunAPeriod refuses files of two runs of one export's period: each
// holds the month so far, so their costs would count twice. Files of no
// export's layout are let through: nothing says what they cover.
func oneRunAPeriod(files []File) error {
	type met struct{ run, file string }
	first := map[string]met{} // by period, the run first met and its file
	for _, f := range files {
		r, ok := PlaceInExport(strings.ReplaceAll(f.Name, `\`, "/"))
		if !ok {
			continue
		}
		was, seen := first[r.Period]
		switch {
		case !seen:
			first[r.Period] = met{r.Run, f.Name}
		case was.run != r.Run:
			return fmt.Errorf("%s and %s are two runs of one export's period %s: each run of a month-to-date export holds the month so far, so their costs would count twice. Give the files of one run, the newest (the run's manifest.json says when it was submitted), or let pal collect choose it",
				was.file, f.Name, path.Base(r.Period))
		}
	}
	return nil
}
