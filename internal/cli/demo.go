package cli

import (
	"context"

	"github.com/palproject/pal/internal/demo"
)

func runDemo(ctx context.Context, env *Env, args []string) error {
	var seed uint64
	fs := newFlagSet(env, "demo", "demo [--seed N] > demo.ndjson")
	fs.Uint64Var(&seed, "seed", 1, "seed of the usage drawn at random; the same seed gives the same log")
	if err := fs.parse(args); err != nil {
		return err
	}
	return demo.Write(env.Stdout, seed)
}
