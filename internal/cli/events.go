package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/palproject/pal/internal/api"
)

func runEvents(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || args[0] != "push" {
		return usagef("say pal events push FILE --server URL --token T")
	}
	var sf serverFlags
	var format string
	var strict bool
	fs := newFlagSet(env, "events push", "events push --server URL --token T [--format json] [--strict] FILE (NDJSON events, or a Parquet consumption file)")
	sf.register(fs.FlagSet)
	fs.StringVar(&format, "format", "table", "output format: table or json")
	fs.BoolVar(&strict, "strict", false, "exit 1 when any event is refused")
	if err := fs.parseArgs(args[1:], 1); err != nil {
		return err
	}
	file := fs.Arg(0)
	if file == "" {
		return usagef("name the file of events to push (- for standard input)")
	}
	c, err := sf.client()
	if err != nil {
		return err
	}
	f, err := env.open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	// A Parquet file is one of consumption, which the service keeps as
	// columns (POST /v1/consumption); anything else is a file of events.
	in := bufio.NewReader(f)
	push := c.Push
	if magic, _ := in.Peek(4); string(magic) == "PAR1" {
		push = c.PushConsumption
	}
	res, err := push(ctx, in)
	if err != nil {
		return err
	}
	if format == "json" {
		if err := writeJSON(env.Stdout, res); err != nil {
			return err
		}
	} else {
		printIngest(env.Stdout, res)
	}
	if strict && len(res.Refused) > 0 {
		return errRefused
	}
	return nil
}

// printIngest writes the service's answer to a batch as a table: the
// counts, then each held and each refused event with its reason.
func printIngest(w io.Writer, res api.IngestResult) {
	fmt.Fprintf(w, "accepted %d, held %d, duplicates %d, refused %d\n", res.Accepted, len(res.Held), res.Duplicates, len(res.Refused))
	for _, rf := range res.Held {
		fmt.Fprintf(w, "  held (applied once what it needs arrives): %s\n", rf.Error())
	}
	for _, rf := range res.Refused {
		fmt.Fprintf(w, "  refused: %s\n", rf.Error())
	}
}
