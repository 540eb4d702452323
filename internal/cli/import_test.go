package cli

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

var costRows = flag.Int("cost-rows", 100000, "the rows of BenchmarkImportCosts's export")

// BenchmarkImportCosts imports a Cost Management export (EA columns) of
// -cost-rows rows into a Parquet consumption file.
func BenchmarkImportCosts(b *testing.B) {
	dir := b.TempDir()
	export := filepath.Join(dir, "costs.csv")
	f, err := os.Create(export)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "SubscriptionId,ResourceGroup,Date,MeterCategory,MeterName,Quantity,EffectivePrice,CostInBillingCurrency,ResourceId,PublisherType,ChargeType,PricingModel,ResourceLocation")
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < *costRows; n++ {
		r, day := (n/2)%16000, 1+(n/32000)%31
		sub := fmt.Sprintf("7d1c2a4e-0000-4000-8000-%012d", r%20)
		fmt.Fprintf(w, "%s,rg-%d,01/%02d/2026,Virtual Machines,%s,24,0.096,%.6f,/subscriptions/%s/resourceGroups/rg-%d/providers/Microsoft.Compute/virtualMachines/vm-%d,Azure,Usage,OnDemand,westeurope\n",
			sub, r%40, day, []string{"Compute", "Disk"}[n%2], rng.Float64()*10, sub, r%40, r)
	}
	w.Flush()
	f.Close()
	out := filepath.Join(dir, "consumption.parquet")
	for b.Loop() {
		code, _, errOut := run(b, "", "import", "azure-costs", export, "--tenant", "contoso", "--out", out)
		if code != 0 {
			b.Fatal(errOut)
		}
	}
}
