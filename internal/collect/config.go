package collect

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/palproject/pal/internal/event"
)

// Config is what pal collect reads, and from where: the configuration file
// (collect.json). Nothing else is stored: credentials come from the
// environment, the Azure way.
type Config struct {
	// Tenants are the directories to read, each with its scopes and
	// sources.
	Tenants []Tenant `json:"tenants"`
	// CostDays is how many days before the run's own the cost query asks
	// for, so that costs revised after the day (they are, for about three
	// days) replace what was read before. Default 7.
	CostDays int `json:"cost_days,omitempty"`
	// Concurrency bounds the requests in flight to each tenant. Default 4.
	Concurrency int `json:"concurrency,omitempty"`
	// RequestTimeout bounds each try of a request. Default 1m.
	RequestTimeout Duration `json:"request_timeout,omitempty"`
	// Retries is how many times a request answered 408, 429, 500, 502, 503
	// or 504 (or not answered) is tried again, after the Retry-After the
	// API asks for or a growing back-off. Default 4.
	Retries int `json:"retries,omitempty"`
	// Cloud is "public" (the default), "usgovernment" or "china".
	Cloud string `json:"cloud,omitempty"`
	// AuditDays is how many days of the Office 365 Management Activity
	// API's content the audit source reads, back from the run: content is
	// listed by when it became available, a day at a time, and read again
	// on the next run adds nothing. Default 2, so that a run that failed is
	// made up by the next; at most 6, since the API keeps 7.
	AuditDays int `json:"audit_days,omitempty"`
}

// Tenant is one directory to read.
type Tenant struct {
	// Tenant is the directory's ID: where the events belong, and where the
	// credential signs in unless SignIn says otherwise.
	Tenant string `json:"tenant"`
	// SignIn names another tenant for the credential to sign in to: a
	// partner reading a customer's subscriptions through Azure Lighthouse
	// signs in to its own.
	SignIn string `json:"sign_in_tenant,omitempty"`
	// Subscriptions are read for role assignments, PIM, Lighthouse
	// delegations and costs; none named: every subscription of the tenant
	// the credential can see.
	Subscriptions []string `json:"subscriptions,omitempty"`
	// ManagementGroups are read for the role assignments and PIM
	// eligibilities made at them (those made above a subscription also
	// show in its own lists, but PIM lists them only where they are made).
	ManagementGroups []string `json:"management_groups,omitempty"`
	// Lighthouse adds every subscription delegated to the credential
	// through Azure Lighthouse, each read in its own (the customer's)
	// tenant, for the sources that Azure Resource Manager answers.
	Lighthouse bool `json:"lighthouse,omitempty"`
	// Groups are security groups whose members to read besides those the
	// log already knows in the tenant (those role assignments name).
	Groups []string `json:"groups,omitempty"`
	// Sources are read, in the order pal reads them whatever the order
	// here; none named: all of them but powerapps and audit, which need a
	// setup of their own (docs/collecting.md).
	Sources []string `json:"sources,omitempty"`
	// CostExports are Cost Management's scheduled exports that the
	// azure-costs source reads instead of the cost query: a billing
	// account's export reaches subscriptions no credential of pal's can
	// read.
	CostExports []CostExport `json:"cost_exports,omitempty"`
}

// CostExport is where a Cost Management export writes its files.
type CostExport struct {
	// Container is the storage container's URL,
	// https://ACCOUNT.blob.core.windows.net/CONTAINER. The credential
	// reads it with Storage Blob Data Reader; it carries no SAS token.
	Container string `json:"container"`
	// Prefix is the export's folder in the container (its root folder and
	// name: costs/pal-daily); none: the whole container.
	Prefix string `json:"prefix,omitempty"`
}

// Duration is a time.Duration written as Go writes one ("90s", "2m").
type Duration time.Duration

// UnmarshalJSON reads "90s", "2m", "1h30m".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"90s\" or \"2m\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return fmt.Errorf("%q is not a positive duration such as \"90s\" or \"2m\"", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as UnmarshalJSON reads it.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Sources lists the sources pal collects, in the order it reads them: each
// one's events are in the log before the next one is read, since the later
// ones diff against what the earlier ones add (an account before the role
// it holds, a group before its members, an eligibility before its
// activations).
var Sources = []string{
	"management-groups",
	"users",
	"azure-roles",
	"azure-pim",
	"groups",
	"lighthouse",
	"links",
	"azure-costs",
	"powerapps",
	"audit",
}

// setUp are the sources that need a setup besides a role, so that a
// configuration names them to read them: the Power Platform admin API
// answers a service principal only once an administrator has registered
// it as a management application, and the Office 365 Management Activity
// API lists content only after a subscription to it has been started.
var setUp = []string{"powerapps", "audit"}

// defaultSources are the sources a tenant that names none reads.
var defaultSources = slices.DeleteFunc(slices.Clone(Sources), func(s string) bool { return slices.Contains(setUp, s) })

// armSources are the sources Azure Resource Manager answers for a
// subscription: those a partner reads through Azure Lighthouse, where
// Microsoft Graph does not reach.
var armSources = []string{"azure-roles", "azure-pim", "lighthouse", "azure-costs"}

// Defaults.
const (
	defaultCostDays       = 7
	defaultConcurrency    = 4
	defaultRequestTimeout = Duration(time.Minute)
	defaultRetries        = 4
	defaultAuditDays      = 2
	maxAuditDays          = 6
)

// ReadConfig reads a configuration and checks it, filling in the defaults.
// It returns an error naming the first mistake: an unknown field (a
// misspelt one would otherwise be ignored), a tenant named twice or not at
// all, an unknown source, a subscription or group that is no Azure ID.
func ReadConfig(r io.Reader) (Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return Config{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return Config{}, configError(data, dec, err)
	}
	return c, c.check()
}

// configError says where in the file a decoding error is.
func configError(data []byte, dec *json.Decoder, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	off := dec.InputOffset()
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	line := 1 + bytes.Count(data[:min(int(off), len(data))], []byte("\n"))
	return fmt.Errorf("line %d: %v", line, err)
}

// check checks a configuration and fills in its defaults.
func (c *Config) check() error {
	if len(c.Tenants) == 0 {
		return errors.New(`no tenants: name at least one, {"tenants": [{"tenant": "<tenant ID>"}]}`)
	}
	if _, ok := clouds[c.cloud()]; !ok {
		return fmt.Errorf("cloud %q: pal knows public, usgovernment and china", c.Cloud)
	}
	seen := map[string]bool{}
	for i := range c.Tenants {
		t := &c.Tenants[i]
		t.Tenant = strings.TrimSpace(t.Tenant)
		switch {
		case t.Tenant == "":
			return fmt.Errorf("tenants[%d] names no tenant", i)
		case seen[strings.ToLower(t.Tenant)]:
			return fmt.Errorf("tenant %s is named twice: name each tenant once, with all its subscriptions", t.Tenant)
		}
		seen[strings.ToLower(t.Tenant)] = true
		elsewhere := t.SignIn != "" && !strings.EqualFold(t.SignIn, t.Tenant)
		switch {
		case len(t.Sources) == 0 && elsewhere:
			t.Sources = slices.Clone(armSources)
		case len(t.Sources) == 0:
			t.Sources = slices.Clone(defaultSources)
		}
		for _, s := range t.Sources {
			if !slices.Contains(Sources, s) {
				return fmt.Errorf("tenant %s: unknown source %q: pal collects %s", t.Tenant, s, strings.Join(Sources, ", "))
			}
			if elsewhere && !slices.Contains(armSources, s) {
				return fmt.Errorf("tenant %s signs in to tenant %s, which reaches its subscriptions (%s) and not its directory: %s is read signed in to the tenant itself", t.Tenant, t.SignIn, strings.Join(armSources, ", "), s)
			}
			if slices.Contains(setUp, s) && clouds[c.cloud()].bap == "" {
				return fmt.Errorf("tenant %s: pal reads %s in the public cloud only, whose endpoints it knows; in cloud %s, export them and pal import %s", t.Tenant, s, c.cloud(), s)
			}
		}
		if err := t.checkExports(); err != nil {
			return err
		}
		for _, s := range t.Subscriptions {
			if !event.IsSegment(s) {
				return fmt.Errorf("tenant %s: %q is not a subscription ID", t.Tenant, s)
			}
		}
		for _, g := range t.ManagementGroups {
			if !event.IsSegment(g) {
				return fmt.Errorf("tenant %s: %q is not a management group ID", t.Tenant, g)
			}
		}
		for _, g := range t.Groups {
			if !event.IsSegment(g) {
				return fmt.Errorf("tenant %s: %q is not a group's object ID", t.Tenant, g)
			}
		}
	}
	if c.CostDays == 0 {
		c.CostDays = defaultCostDays
	}
	if c.CostDays < 1 || c.CostDays > 365 {
		return fmt.Errorf("cost_days %d: the cost query reaches back 1 to 365 days", c.CostDays)
	}
	if c.Concurrency == 0 {
		c.Concurrency = defaultConcurrency
	}
	if c.Concurrency < 1 || c.Concurrency > 64 {
		return fmt.Errorf("concurrency %d: between 1 and 64 requests a tenant", c.Concurrency)
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = defaultRequestTimeout
	}
	if c.Retries == 0 {
		c.Retries = defaultRetries
	}
	if c.Retries < 0 || c.Retries > 10 {
		return fmt.Errorf("retries %d: between 0 and 10", c.Retries)
	}
	if c.AuditDays == 0 {
		c.AuditDays = defaultAuditDays
	}
	if c.AuditDays < 1 || c.AuditDays > maxAuditDays {
		return fmt.Errorf("audit_days %d: the Management Activity API keeps its content 7 days, and a day read starts within them: 1 to %d", c.AuditDays, maxAuditDays)
	}
	return nil
}

// checkExports checks a tenant's cost exports: each a container's URL,
// read with the tenant's credential, by the azure-costs source.
func (t *Tenant) checkExports() error {
	if len(t.CostExports) > 0 && !slices.Contains(t.Sources, "azure-costs") {
		return fmt.Errorf("tenant %s: cost_exports are read by the azure-costs source, which the tenant's sources leave out: add it, or drop cost_exports", t.Tenant)
	}
	for i := range t.CostExports {
		e := &t.CostExports[i]
		e.Container = strings.TrimRight(strings.TrimSpace(e.Container), "/")
		u, err := url.Parse(e.Container)
		switch {
		case e.Container == "":
			return fmt.Errorf("tenant %s: cost_exports[%d] names no container: give its URL, https://ACCOUNT.blob.core.windows.net/CONTAINER", t.Tenant, i)
		case err != nil || u.Scheme != "https" || u.Host == "" || strings.Trim(u.Path, "/") == "":
			return fmt.Errorf("tenant %s: cost_exports[%d] container %q is not a container's URL: https://ACCOUNT.blob.core.windows.net/CONTAINER", t.Tenant, i, e.Container)
		case u.RawQuery != "" || u.Fragment != "":
			return fmt.Errorf("tenant %s: cost_exports[%d] container %q carries a query (a SAS token?): pal keeps no secret in its configuration; give the container's URL alone, and the credential Storage Blob Data Reader on it", t.Tenant, i, e.Container)
		}
		e.Prefix = strings.TrimLeft(e.Prefix, "/")
		for _, o := range t.CostExports[:i] {
			if strings.EqualFold(o.Container, e.Container) && (strings.HasPrefix(o.Prefix, e.Prefix) || strings.HasPrefix(e.Prefix, o.Prefix)) {
				return fmt.Errorf("tenant %s: cost exports %s/%s and %s/%s overlap: the files of one would be read twice", t.Tenant, o.Container, o.Prefix, e.Container, e.Prefix)
			}
		}
	}
	return nil
}

func (c *Config) cloud() string { return strings.ToLower(cmp.Or(c.Cloud, "public")) }
