package metrics

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/palproject/pal/internal/event"
)

func TestReadConfig(t *testing.T) {
	cfg, err := ReadConfig([]byte(`{"rates": {"power_pages": 120}, "deployment_mcv": {"smb": 4000},
		"points": {"advanced": {"enterprise": 2}, "deployment": 5}, "max": {"usage_growth": 25}, "qualifying_total": 65}`))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Rates[event.PowerPages] = 120
	want.DeploymentMCV[event.SMB] = 4000
	want.AdvancedPoints[event.Enterprise] = 2
	want.DeploymentPoints = 5
	want.MaxUsageGrowth = 25
	want.QualifyingTotal = 65
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("the file over the defaults (-want +got):\n%s", diff)
	}
	if cfg, err := ReadConfig([]byte(`{}`)); err != nil || !cmp.Equal(cfg, DefaultConfig()) {
		t.Errorf("an empty object = %+v, %v; want the defaults", cfg, err)
	}

	for file, want := range map[string]string{
		`{"rates": {"power_app": 1}}`:               `rates: unknown "power_app": use copilot_studio, customer_insights, power_apps`,
		`{"deployment_mcv": {"large": 1}}`:          `deployment_mcv: unknown "large": use enterprise, smb`,
		`{"rate": {}}`:                              `unknown field "rate"`,
		`{"max": {"usage_growth": -1}}`:             "max.usage_growth is -1: it cannot be below zero",
		`{"points": {"intermediate": {"smb": -4}}}`: "points.intermediate.smb is -4: it cannot be below zero",
		`{"rates": {"power_bi": "200"}}`:            "cannot unmarshal string",
		`{} {}`:                                     "give one object",
		`[1]`:                                       "not a metrics configuration",
	} {
		if _, err := ReadConfig([]byte(file)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ReadConfig(%s) = %v, want an error saying %q", file, err, want)
		}
	}
}
