package collect

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

// graphClient reads Microsoft Graph through azcore's pipeline — the same
// retries, back-off, telemetry and token handling as the Azure Resource
// Manager clients — with a token for Graph's own scope. pal reads two
// lists of Graph (users, a group's members): Microsoft's Graph SDK for Go
// would add a large generated module for them.
type graphClient struct {
	pl       runtime.Pipeline
	endpoint string // https://graph.microsoft.com, without a trailing /
}

func newGraphClient(cred azcore.TokenCredential, endpoint string, o policy.ClientOptions) *graphClient {
	endpoint = strings.TrimRight(endpoint, "/")
	auth := runtime.NewBearerTokenPolicy(cred, []string{endpoint + "/.default"}, nil)
	pl := runtime.NewPipeline(moduleName, moduleVersion, runtime.PipelineOptions{PerRetry: []policy.Policy{auth}}, &o)
	return &graphClient{pl: pl, endpoint: endpoint}
}

// list reads every page of a Graph list, following @odata.nextLink.
func (g *graphClient) list(ctx context.Context, path string, progress func(page)) ([]page, error) {
	var out []page
	next := g.endpoint + path
	for next != "" {
		req, err := runtime.NewRequest(ctx, http.MethodGet, next)
		if err != nil {
			return nil, err
		}
		req.Raw().Header.Set("Accept", "application/json")
		pg, err := do(g.pl, req, len(out)+1)
		if err != nil {
			return nil, err
		}
		out = append(out, pg)
		progress(pg)
		var link struct {
			Next string `json:"@odata.nextLink"`
		}
		if err := json.Unmarshal(pg.body, &link); err != nil {
			return nil, &RequestError{Method: http.MethodGet, URL: bareURL(req.Raw()), Err: err}
		}
		next = link.Next
	}
	return out, nil
}
