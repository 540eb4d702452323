package imports_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/palproject/pal/internal/imports"
)

// costsOf imports one cost export and lists its records as
// "date resource meter cost", with the problems.
func costsOf(t *testing.T, file string) (records, problems []string) {
	t.Helper()
	res, err := imports.Run("azure-costs", []imports.File{{Name: "export.csv", R: strings.NewReader(file)}}, imports.Options{Tenant: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range res.Events {
		records = append(records, fmt.Sprintf("%s %s %s %s", ev.Date, ev.Resource[strings.LastIndexByte(ev.Resource, '/')+1:], ev.Meter, ev.Cost))
	}
	for _, p := range res.Problems {
		problems = append(problems, p.String())
	}
	slices.Sort(records)
	return records, problems
}

// TestCostExportsAsSpreadsheetsAndFOCUSWriteThem: the shapes of cost
// exports re-saved by a spreadsheet, and FOCUS's names of its preview and
// of third parties' charges.
func TestCostExportsAsSpreadsheetsAndFOCUSWriteThem(t *testing.T) {
	const vm = "/subscriptions/7d1c2a4e-0000-4000-8000-000000000002/resourceGroups/app/providers/Microsoft.Compute/virtualMachines/"
	for _, tt := range []struct {
		name, file string
		want       []string
	}{
		{"a US re-save: thousands separated by commas",
			"Date,ResourceId,CostInBillingCurrency\n01/05/2026," + vm + "vm1,\"1,234\"\n01/05/2026," + vm + "vm2,\"1,234,567.5\"\n",
			[]string{"2026-01-05 vm1 standard 1234", "2026-01-05 vm2 standard 1234567.5"}},
		{"decimal commas in a file of commas (LibreOffice, Google Sheets)",
			"Date,ResourceId,CostInBillingCurrency\n2026-01-05," + vm + "vm1,\"12,5\"\n2026-01-05," + vm + "vm2,\"0,0123456\"\n2026-01-05," + vm + "vm3,\"1.234,5\"\n2026-01-05," + vm + "vm4,\"0,125\"\n",
			[]string{"2026-01-05 vm1 standard 12.5", "2026-01-05 vm2 standard 0.0123456", "2026-01-05 vm3 standard 1234.5", "2026-01-05 vm4 standard 0.125"}},
		{"a US re-save as text of tabs: months first",
			"Date\tResourceId\tCostInBillingCurrency\n1/5/2026\t" + vm + "vm1\t2\n1/13/2026\t" + vm + "vm1\t3\n",
			[]string{"2026-01-05 vm1 standard 2", "2026-01-13 vm1 standard 3"}},
		{"a re-save in a locale of days first and decimal commas",
			"Date;ResourceId;CostInBillingCurrency\n05/01/2026;" + vm + "vm1;12,5\n13/01/2026;" + vm + "vm1;1.204,5\n",
			[]string{"2026-01-05 vm1 standard 12.5", "2026-01-13 vm1 standard 1204.5"}},
		{"dates with dots",
			"Date,ResourceId,CostInBillingCurrency\n05.01.2026," + vm + "vm1,2\n",
			[]string{"2026-01-05 vm1 standard 2"}},
		{"FOCUS 1.0 preview's pricing categories",
			"ChargePeriodStart,ResourceId,BilledCost,PricingCategory,CommitmentDiscountType\n2026-01-05," + vm + "vm1,3,On-Demand,\n2026-01-05," + vm + "vm1,4,Commitment-Based,Reservation\n2026-01-05," + vm + "vm1,5,Commitment-Based,Savings Plan\n",
			[]string{"2026-01-05 vm1 reservation 4", "2026-01-05 vm1 savings_plan 5", "2026-01-05 vm1 standard 3"}},
		{"FOCUS's third-party charges",
			"ChargePeriodStart,ResourceId,BilledCost,PricingCategory,x_PublisherCategory\n2026-01-05," + vm + "vm1,99,Standard,Vendor\n2026-01-05," + vm + "vm1,1,Standard,Cloud Provider\n",
			[]string{"2026-01-05 vm1 marketplace 99", "2026-01-05 vm1 standard 1"}},
	} {
		got, problems := costsOf(t, tt.file)
		if !slices.Equal(got, tt.want) || len(problems) > 0 {
			t.Errorf("%s: %q, problems %q; want %q", tt.name, got, problems, tt.want)
		}
	}
	// Each file's dates of slashes go one way, which its dates say: the
	// day first in a file with a 13/01, the month first in one with a
	// 1/13, whatever its separator; where none says, the month first but
	// in a file of semicolons. A file whose dates go both ways is said.
	for _, tt := range []struct {
		name  string
		files map[string]string
		want  []string
		said  string
	}{
		{"a re-save in a locale of days first, with commas (en-GB)",
			map[string]string{"gb.csv": "Date,ResourceId,CostInBillingCurrency\n05/01/2026," + vm + "vm1,1\n13/01/2026," + vm + "vm1,2\n"},
			[]string{"2026-01-05 vm1", "2026-01-13 vm1"}, ""},
		{"months first in a file of semicolons, as its dates say",
			map[string]string{"eu.csv": "Date;ResourceId;CostInBillingCurrency\n05/01/2026;" + vm + "vm1;1\n1/13/2026;" + vm + "vm1;2\n"},
			[]string{"2026-01-13 vm1", "2026-05-01 vm1"}, ""},
		{"the same text in two files read each its own way",
			map[string]string{"eu.csv": "Date;ResourceId;CostInBillingCurrency\n05/01/2026;" + vm + "vm1;1\n", "us.csv": "Date,ResourceId,CostInBillingCurrency\n05/01/2026," + vm + "vm2,3\n"},
			[]string{"2026-01-05 vm1", "2026-05-01 vm2"}, ""},
		{"both ways in one file",
			map[string]string{"both.csv": "Date,ResourceId,CostInBillingCurrency\n13/01/2026," + vm + "vm1,1\n01/13/2026," + vm + "vm2,2\n"},
			nil, "both.csv: its dates put the day first on some rows and the month first on others"},
	} {
		var files []imports.File
		for _, name := range slices.Sorted(maps.Keys(tt.files)) {
			files = append(files, imports.File{Name: name, R: strings.NewReader(tt.files[name])})
		}
		res, err := imports.Run("azure-costs", files, imports.Options{Tenant: "t1"})
		if err != nil {
			t.Fatal(err)
		}
		var dates []string
		for _, ev := range res.Events {
			dates = append(dates, ev.Date+" "+ev.Resource[strings.LastIndexByte(ev.Resource, '/')+1:])
		}
		slices.Sort(dates)
		said := ""
		for _, p := range res.Problems {
			said += p.String()
		}
		if tt.want != nil && !slices.Equal(dates, tt.want) || tt.said == "" && said != "" || !strings.Contains(said, tt.said) {
			t.Errorf("%s: %q, problems %q; want %q, %q", tt.name, dates, said, tt.want, tt.said)
		}
	}
}

// TestCostShapesOfOtherTools: the pay-as-you-go usage export (its day in
// UsageDateTime, with a time or without), the Consumption API's usage
// details in their modern shape (the resource's path in instanceName),
// az consumption usage list (its day in usageStart) and a Cost Management
// query's answer (columns and rows) give the same records as a Cost
// Management export of the same rows.
func TestCostShapesOfOtherTools(t *testing.T) {
	const vm = "/subscriptions/2639de71-ca37-4a17-a104-17665a50e7fc/resourceGroups/COSTMGMT/providers/Microsoft.Compute/virtualMachines/test-vm-1"
	want := []string{"2019-07-29 test-vm-1 standard 2.304"}
	for name, file := range map[string]string{
		"a Cost Management export": "Date,ResourceId,CostInBillingCurrency\n2019-07-29," + vm + ",2.304\n",
		"the pay-as-you-go usage export": "SubscriptionGuid,UsageDateTime,MeterId,PreTaxCost,ConsumedService,InstanceId,Currency\n" +
			"2639de71-ca37-4a17-a104-17665a50e7fc,2019-07-29,cd2d7ca5,2.304,Microsoft.Compute," + vm + ",USD\n",
		"the pay-as-you-go usage export, with times": "SubscriptionGuid,UsageDateTime,MeterId,PreTaxCost,ConsumedService,InstanceId,Currency\n" +
			"2639de71-ca37-4a17-a104-17665a50e7fc,2019-07-29 00:00:00,cd2d7ca5,2.304,Microsoft.Compute," + vm + ",USD\n",
		"the Consumption API's modern usage details": `{"value": [{"id": "/providers/Microsoft.Billing/BillingAccounts/1234:56789/providers/Microsoft.Consumption/usageDetails/usageDetails_Id1",
			"name": "usageDetails_Id1", "type": "Microsoft.Consumption/usageDetails", "kind": "modern",
			"properties": {"date": "2019-07-29T00:00:00.0000000Z", "instanceName": "` + vm + `", "chargeType": "Usage",
				"costInBillingCurrency": 2.304, "costInUSD": 2.304, "publisherType": "Azure", "billingCurrencyCode": "USD"}}]}`,
		"az consumption usage list": `[{"instanceId": "` + vm + `", "instanceName": "test-vm-1", "pretaxCost": "2.304", "currency": "USD",
			"usageStart": "2019-07-29T00:00:00Z", "usageEnd": "2019-07-29T23:59:59Z", "type": "Microsoft.Consumption/usageDetails"}]`,
		// Two pages of a query's answer, as a script following nextLink
		// appends them: the day's cost is split between them.
		"a Cost Management query's answer": `{"id": "subscriptions/2639de71/providers/Microsoft.CostManagement/query/q1", "type": "Microsoft.CostManagement/query",
			"properties": {"nextLink": "https://management.azure.com/next", "columns": [{"name": "PreTaxCost", "type": "Number"}, {"name": "UsageDate", "type": "Number"},
			{"name": "ResourceId", "type": "String"}, {"name": "PricingModel", "type": "String"}, {"name": "Currency", "type": "String"}],
			"rows": [[2, 20190729, "` + vm + `", "OnDemand", "USD"]]}}
{"id": "subscriptions/2639de71/providers/Microsoft.CostManagement/query/q1", "type": "Microsoft.CostManagement/query",
			"properties": {"nextLink": null, "columns": [{"name": "PreTaxCost", "type": "Number"}, {"name": "UsageDate", "type": "Number"},
			{"name": "ResourceId", "type": "String"}, {"name": "PricingModel", "type": "String"}, {"name": "Currency", "type": "String"}],
			"rows": [[0.304, 20190729, "` + vm + `", "OnDemand", "USD"]]}}`,
		// az costmanagement query prints the properties at the top.
		"az costmanagement query": `{"columns": [{"name": "PreTaxCost", "type": "Number"}, {"name": "UsageDate", "type": "Number"}, {"name": "ResourceId", "type": "String"},
			{"name": "PricingModel", "type": "String"}], "rows": [[2.304, 20190729, "` + vm + `", "OnDemand"]], "nextLink": null}`,
	} {
		if got, problems := costsOf(t, file); !slices.Equal(got, want) || len(problems) > 0 {
			t.Errorf("%s: %q, problems %q; want %q", name, got, problems, want)
		}
	}
	// A file of usage details handed to another source is told so.
	_, err := imports.Run("azure-roles", []imports.File{{Name: "usage.json", R: strings.NewReader(`[{"type": "Microsoft.Consumption/usageDetails", "properties": {"instanceName": "` + vm + `"}}]`)}}, imports.Options{Tenant: "t1"})
	if err == nil || !strings.Contains(err.Error(), "pal import azure-costs usage.json") {
		t.Errorf("usage details as role assignments: %v, want the source that reads them named", err)
	}
}

// TestRowsOfABadDateAreCounted: rows whose date is not one are not
// imported, and every one is said: one line for a text that several rows
// share, with their count.
func TestRowsOfABadDateAreCounted(t *testing.T) {
	const vm = "/subscriptions/7d1c2a4e-0000-4000-8000-000000000002/resourceGroups/app/providers/Microsoft.Compute/virtualMachines/"
	file := "Date,ResourceId,CostInBillingCurrency\n2026-01-05," + vm + "vm1,1\n"
	for i := range 5 {
		file += fmt.Sprintf("n/a,%svm%d,2\n", vm, i+2)
	}
	file += "someday," + vm + "vm9,3\n"
	// A row refused for its cost is said once, and not among its date's.
	file += "n/a," + vm + "vm8,-1\n"
	got, problems := costsOf(t, file)
	want := []string{`export.csv: 5 rows skipped: the date "n/a" is not a date (the first of them on line 3)`, `export.csv line 8: the date "someday" is not a date`,
		`export.csv line 9: the cost -1 of ` + vm + `vm8 on n/a is negative (a refund or a credit): consumption is never less than nothing, so the row is not imported`}
	if !slices.Equal(got, []string{"2026-01-05 vm1 standard 1"}) || !slices.Equal(problems, want) {
		t.Errorf("rows of bad dates: %q, problems %q; want %q", got, problems, want)
	}
}

// TestTwoRunsOfAPeriodAreRefused: the files of two runs of one export's
// period, each holding the month so far, would count its costs twice: they
// are refused, naming both files; the parts of one run, and the runs of
// different periods or exports, are read together.
func TestTwoRunsOfAPeriodAreRefused(t *testing.T) {
	const vm = "/subscriptions/7d1c2a4e-0000-4000-8000-000000000002/resourceGroups/app/providers/Microsoft.Compute/virtualMachines/vm1"
	run := func(day int) string {
		var b strings.Builder
		b.WriteString("Date,ResourceId,CostInBillingCurrency\n")
		for d := 1; d <= day; d++ {
			fmt.Fprintf(&b, "2026-01-%02d,%s,1\n", d, vm)
		}
		return b.String()
	}
	read := func(names ...string) (int, error) {
		var files []imports.File
		for i, n := range names {
			files = append(files, imports.File{Name: n, R: strings.NewReader(run(3 + i))})
		}
		res, err := imports.Run("azure-costs", files, imports.Options{Tenant: "t1"})
		return len(res.Events), err
	}
	for _, tt := range []struct {
		name  string
		files []string
		want  string // the error's start, "" when the files are read
	}{
		{"two run folders", []string{"costs/daily/20260101-20260131/3c1d0a2b-1/part_0_0001.csv", "costs/daily/20260101-20260131/3c1d0a2b-2/part_0_0001.csv"},
			"costs/daily/20260101-20260131/3c1d0a2b-1/part_0_0001.csv and costs/daily/20260101-20260131/3c1d0a2b-2/part_0_0001.csv are two runs of one export's period 20260101-20260131"},
		{"two runs of the old layout", []string{`daily\20260101-20260131\daily_1.csv`, `daily\20260101-20260131\daily_2.csv`},
			`daily\20260101-20260131\daily_1.csv and daily\20260101-20260131\daily_2.csv are two runs`},
		{"the parts of one run", []string{"daily/20260101-20260131/r1/part_0_0001.csv", "daily/20260101-20260131/r1/part_0_0002.csv"}, ""},
		{"two exports", []string{"a/20260101-20260131/r1/part_0_0001.csv", "b/20260101-20260131/r1/part_0_0001.csv"}, ""},
		{"two periods", []string{"a/20251201-20251231/r1/part_0_0001.csv", "a/20260101-20260131/r2/part_0_0001.csv"}, ""},
		{"files of no export's layout", []string{"january.csv", "january-again.csv"}, ""},
		// A folder above the export named as a period is not the period.
		{"two runs under a folder named as a period", []string{"q1/20260101-20260331/daily/20260101-20260131/r1/part_0_0001.csv", "q1/20260101-20260331/daily/20260101-20260131/r2/part_0_0001.csv"},
			"q1/20260101-20260331/daily/20260101-20260131/r1/part_0_0001.csv and q1/20260101-20260331/daily/20260101-20260131/r2/part_0_0001.csv are two runs"},
		{"two exports under a folder named as a period", []string{"q1/20260101-20260331/a/20260101-20260131/r1/part_0_0001.csv", "q1/20260101-20260331/b/20260101-20260131/r1/part_0_0001.csv"}, ""},
		{"the parts of one run in the period's folder", []string{"a/20260101-20260131/part_0_0001.csv", "a/20260101-20260131/part_0_0002.csv.gz"}, ""},
	} {
		n, err := read(tt.files...)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want == "" && n == 0:
			t.Errorf("%s: nothing read", tt.name)
		case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want) || !strings.Contains(err.Error(), "pal collect")):
			t.Errorf("%s: %v, want an error starting %q and naming pal collect", tt.name, err, tt.want)
		}
	}
}
