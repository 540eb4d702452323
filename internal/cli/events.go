package cli

import (
	"context"
	"fmt"

	"github.com/palproject/pal/internal/event"
)

func runEvents(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || args[0] != "push" {
		return usagef("say pal events push FILE --server URL --token T")
	}
	var sf serverFlags
	var format string
	var strict bool
	fs := newFlagSet(env, "events push", "events push --server URL --token T [--format json] [--strict] FILE")
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
	var res struct {
		Accepted   int              `json:"accepted"`
		Duplicates int              `json:"duplicates"`
		Refused    []*event.Refusal `json:"refused"`
	}
	if err := c.do(ctx, "POST", "/v1/events", nil, f, &res); err != nil {
		return err
	}
	if format == "json" {
		if err := writeJSON(env.Stdout, res); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(env.Stdout, "accepted %d, duplicates %d, refused %d\n", res.Accepted, res.Duplicates, len(res.Refused))
		for _, rf := range res.Refused {
			fmt.Fprintf(env.Stdout, "  %s\n", rf.Error())
		}
	}
	if strict && len(res.Refused) > 0 {
		return errRefused
	}
	return nil
}
