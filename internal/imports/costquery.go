package imports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
)

// CostQueryRecords turns a page of a Cost Management query's answer
// ({"properties": {"columns": [...], "rows": [[...]], "nextLink": …}})
// into records, a JSON array of objects, one a row, named by its columns
// as an export's header names them (UsageDate, ResourceId, PricingModel,
// PreTaxCost), the numbers as the API wrote them, each with the fields
// extra gives (the publisher type a query asked for); and returns its
// nextLink. An empty page (the API's 204) has no rows.
func CostQueryRecords(page []byte, extra map[string]string) (records []byte, next string, err error) {
	type answer struct {
		NextLink *string `json:"nextLink"`
		Columns  []struct {
			Name string `json:"name"`
		} `json:"columns"`
		Rows [][]json.RawMessage `json:"rows"`
	}
	var res struct {
		Properties answer `json:"properties"`
		// az costmanagement query prints the properties at the top.
		answer
	}
	if len(bytes.TrimSpace(page)) == 0 {
		return []byte("[]"), "", nil
	}
	dec := json.NewDecoder(bytes.NewReader(bytes.TrimPrefix(page, []byte("\xef\xbb\xbf"))))
	if err := dec.Decode(&res); err != nil {
		return nil, "", fmt.Errorf("not a cost query's answer: %w", err)
	}
	if res.Properties.Columns == nil {
		res.Properties = res.answer
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range extra {
			if !yield(k) {
				return
			}
		}
	})
	var b bytes.Buffer
	b.WriteString("[")
	for i, row := range res.Properties.Rows {
		if len(row) != len(res.Properties.Columns) {
			return nil, "", fmt.Errorf("row %d has %d values for %d columns", i+1, len(row), len(res.Properties.Columns))
		}
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n{")
		for j, col := range res.Properties.Columns {
			if j > 0 {
				b.WriteString(",")
			}
			name, _ := json.Marshal(col.Name)
			fmt.Fprintf(&b, "%s:%s", name, row[j])
		}
		for _, k := range keys {
			fmt.Fprintf(&b, ",%q:%q", k, extra[k])
		}
		b.WriteString("}")
	}
	b.WriteString("\n]\n")
	if res.Properties.NextLink != nil {
		next = *res.Properties.NextLink
	}
	return b.Bytes(), next, nil
}

// costQueries turns a file of a cost query's answers (restatePages, or
// one as az costmanagement query prints it) into records; a file of
// anything else is returned as it is.
func costQueries(data []byte) []byte {
	return restatePages(data, func(page []byte) ([]byte, bool) {
		var q struct {
			Properties struct {
				Columns []json.RawMessage `json:"columns"`
			} `json:"properties"`
			Columns []json.RawMessage `json:"columns"`
		}
		if json.Unmarshal(page, &q) != nil || q.Properties.Columns == nil && q.Columns == nil {
			return nil, false
		}
		recs, _, err := CostQueryRecords(page, nil)
		return recs, err == nil
	})
}
