package metrics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/palproject/pal/internal/event"
)

// configFile is the file --metrics-config reads: every field may be left
// out, and keeps then the value of DefaultConfig. A map names some of the
// workloads or segments, and the others keep theirs.
type configFile struct {
	Rates             map[string]float64 `json:"rates"`
	DeploymentMCV     map[string]float64 `json:"deployment_mcv"`
	GrowthBaselineMCV map[string]float64 `json:"growth_baseline_mcv"`
	Points            struct {
		NetCustomerAdd *float64           `json:"net_customer_add"`
		Intermediate   map[string]float64 `json:"intermediate"`
		Advanced       map[string]float64 `json:"advanced"`
		Deployment     *float64           `json:"deployment"`
	} `json:"points"`
	Max struct {
		NetCustomerAdds *float64 `json:"net_customer_adds"`
		Intermediate    *float64 `json:"intermediate"`
		Advanced        *float64 `json:"advanced"`
		UsageGrowth     *float64 `json:"usage_growth"`
		Deployments     *float64 `json:"deployments"`
	} `json:"max"`
	QualifyingTotal *float64 `json:"qualifying_total"`
}

// ReadConfig reads rates and thresholds from a JSON file's contents over
// DefaultConfig's (SPEC.md sections 5 and 6: they are configuration, not
// code), for example
//
//	{"rates": {"power_pages": 120}, "deployment_mcv": {"smb": 4000},
//	 "points": {"advanced": {"enterprise": 2}}, "max": {"usage_growth": 25},
//	 "qualifying_total": 65}
//
// A field, workload or segment it does not know, or a value below zero, is
// an error that names it.
func ReadConfig(data []byte) (Config, error) {
	cfg := DefaultConfig()
	var f configFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return cfg, fmt.Errorf("not a metrics configuration: %v (the fields are rates, deployment_mcv, growth_baseline_mcv, points, max and qualifying_total)", err)
	}
	if dec.More() {
		return cfg, fmt.Errorf("not a metrics configuration: more follows its JSON object; give one object")
	}
	workloads := slices.Sorted(maps.Keys(cfg.Rates))
	segments := []string{event.Enterprise, event.SMB}
	for _, m := range []struct {
		name  string
		from  map[string]float64
		into  map[string]float64
		names []string
	}{
		{"rates", f.Rates, cfg.Rates, workloads},
		{"deployment_mcv", f.DeploymentMCV, cfg.DeploymentMCV, segments},
		{"growth_baseline_mcv", f.GrowthBaselineMCV, cfg.GrowthBaselineMCV, segments},
		{"points.intermediate", f.Points.Intermediate, cfg.IntermediatePoints, segments},
		{"points.advanced", f.Points.Advanced, cfg.AdvancedPoints, segments},
	} {
		for k, v := range m.from {
			if !slices.Contains(m.names, k) {
				return cfg, fmt.Errorf("%s: unknown %q: use %s", m.name, k, strings.Join(m.names, ", "))
			}
			if v < 0 {
				return cfg, fmt.Errorf("%s.%s is %v: it cannot be below zero", m.name, k, v)
			}
			m.into[k] = v
		}
	}
	for _, v := range []struct {
		name string
		from *float64
		into *float64
	}{
		{"points.net_customer_add", f.Points.NetCustomerAdd, &cfg.NetCustomerAddPoints},
		{"points.deployment", f.Points.Deployment, &cfg.DeploymentPoints},
		{"max.net_customer_adds", f.Max.NetCustomerAdds, &cfg.MaxNetCustomerAdds},
		{"max.intermediate", f.Max.Intermediate, &cfg.MaxIntermediate},
		{"max.advanced", f.Max.Advanced, &cfg.MaxAdvanced},
		{"max.usage_growth", f.Max.UsageGrowth, &cfg.MaxUsageGrowth},
		{"max.deployments", f.Max.Deployments, &cfg.MaxDeployments},
		{"qualifying_total", f.QualifyingTotal, &cfg.QualifyingTotal},
	} {
		if v.from == nil {
			continue
		}
		if *v.from < 0 {
			return cfg, fmt.Errorf("%s is %v: it cannot be below zero", v.name, *v.from)
		}
		*v.into = *v.from
	}
	return cfg, nil
}
