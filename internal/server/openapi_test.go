package server_test

import (
	"flag"
	"os"
	"testing"

	"github.com/palproject/pal/internal/server"
)

var update = flag.Bool("update", false, "rewrite testdata/openapi.golden.json")

// TestOpenAPIGolden keeps /openapi.json as reviewed: a change to the API
// shows as a change of the golden file.
func TestOpenAPIGolden(t *testing.T) {
	s := start(t, sqliteStore(t), server.Config{})
	status, body := s.call("GET", "/openapi.json", "", "")
	if status != 200 {
		t.Fatalf("GET /openapi.json: %d", status)
	}
	const golden = "testdata/openapi.golden.json"
	if *update {
		if err := os.WriteFile(golden, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/server -run OpenAPI -update)", err)
	}
	if string(body) != string(want) {
		t.Errorf("/openapi.json differs from %s; if the change is meant, run go test ./internal/server -run OpenAPI -update and review the diff", golden)
	}
}
