package server_test

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/attribution/attributiontest"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/server"
	"github.com/palproject/pal/internal/store"
	"github.com/palproject/pal/internal/usage"
)

// TestConsumptionFilePushed: random Azure logs whose costs come as a
// Parquet file to POST /v1/consumption, the rest as events, give the Azure
// reports the same log gives pal with those costs in it.
func TestConsumptionFilePushed(t *testing.T) {
	for seed := range uint64(3) {
		log, _ := fold.Order(attributiontest.RandomAzureLog(seed, 400))
		var control, costs []*event.Event
		last := map[[3]string]int{}
		for _, ev := range log {
			if ev.Type != event.AzureConsumption {
				control = append(control, ev)
				continue
			}
			// A file's cost is a double: the record as it reads back.
			c, err := strconv.ParseFloat(ev.Cost, 64)
			if err != nil {
				continue
			}
			rec := *ev
			rec.Cost = strconv.FormatFloat(c, 'f', -1, 64)
			k := [3]string{ev.Tenant + "\x00" + ev.Resource, ev.Date, ev.Meter}
			if i, ok := last[k]; ok {
				costs[i] = &rec
				continue
			}
			last[k] = len(costs)
			costs = append(costs, &rec)
		}
		var file bytes.Buffer
		w := usage.NewConsumptionWriter(&file)
		for _, ev := range costs {
			c, _ := strconv.ParseFloat(ev.Cost, 64)
			if err := w.Write(usage.Consumption{Tenant: ev.Tenant, Resource: ev.Resource, Date: ev.Date, Cost: c, Meter: ev.Meter}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		var lines bytes.Buffer
		for _, ev := range control {
			lines.Write(ev.AppendJSON(nil))
			lines.WriteByte('\n')
		}

		s := start(t, sqliteStore(t), server.Config{})
		operator := s.token(store.RoleOperator, "", "", "")
		s.push(operator, lines.String())
		var res struct {
			Accepted int
			Refused  []struct{ Line int }
		}
		if status := s.json("POST", "/v1/consumption", operator, file.String(), &res); status != 200 || res.Accepted == 0 {
			_, body := s.call("POST", "/v1/consumption", operator, file.String())
			t.Fatalf("seed %d: POST /v1/consumption: %d %s", seed, status, body)
		}
		want := fold.Events(attribution.DefaultOptions(), append(control, costs...))
		for _, month := range []string{"2026-01", "2026-02"} {
			rep, err := want.Azure().Report(month)
			if err != nil {
				t.Fatal(err)
			}
			wantJSON, _ := json.Marshal(rep)
			_, got := s.call("GET", "/v1/reports/azure?month="+month, operator, "")
			var a, b any
			json.Unmarshal(wantJSON, &a)
			json.Unmarshal(got, &b)
			if diff := gocmp.Diff(a, b); diff != "" {
				t.Errorf("seed %d %s: the service differs from pal (-pal +service):\n%s", seed, month, diff)
			}
		}
	}
	// A tenant administrator pushes its own tenant's costs only; a body
	// that is not Parquet is refused in words.
	s := start(t, sqliteStore(t), server.Config{})
	admin := s.token(store.RoleTenantAdmin, "contoso", "", "")
	if status, body := s.call("POST", "/v1/consumption", admin, "tenant,resource\n"); status != 400 || !bytes.Contains(body, []byte("no consumption file")) {
		t.Errorf("a CSV body: %d %s", status, body)
	}
	var file bytes.Buffer
	w := usage.NewConsumptionWriter(&file)
	w.Write(usage.Consumption{Tenant: "fabrikam", Resource: "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1", Date: "2026-01-01", Cost: 1})
	w.Close()
	var res struct {
		Refused []struct{ Code string }
	}
	if status := s.json("POST", "/v1/consumption", admin, file.String(), &res); status != 200 || len(res.Refused) != 1 || res.Refused[0].Code != "forbidden" {
		t.Errorf("another tenant's costs: %d %+v", status, res)
	}
}
