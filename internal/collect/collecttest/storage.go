package collecttest

import (
	"crypto/sha256"
	"encoding/xml"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// storagePrefix is where the API serves Azure Storage's Blob service: a
// container's URL is API.URL + "/storage/" + its name.
const storagePrefix = "/storage/"

// Blob is a file in a storage container.
type Blob struct {
	Name     string
	Body     []byte
	Modified time.Time
}

// ContainerURL is the URL of a container of the API's Blob service.
func (a *API) ContainerURL(container string) string { return a.URL + storagePrefix + container }

// SetBlobs sets the files of a container.
func (a *API) SetBlobs(container string, blobs []Blob) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.blobs[strings.ToLower(storagePrefix+container)] = slices.Clone(blobs)
}

func (b Blob) etag() string {
	h := sha256.Sum256(append([]byte(b.Modified.String()), b.Body...))
	return fmt.Sprintf("\"0x%X\"", h[:8])
}

// storage answers the Blob service as azblob calls it: List Blobs (flat,
// by prefix, PageSize blobs a page, with a NextMarker), and Get Blob or
// Get Blob Properties, a range of it (x-ms-range) where asked, on the
// condition If-Match where given.
func (a *API) storage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	a.mu.Lock()
	size := max(a.PageSize, 1)
	var container string
	var blobs []Blob
	for path, bs := range a.blobs {
		if p := strings.ToLower(r.URL.Path); p == path || strings.HasPrefix(p, path+"/") {
			container, blobs = path, bs
		}
	}
	a.mu.Unlock()
	if container == "" {
		writeStorageError(w, http.StatusNotFound, "ContainerNotFound", "The specified container does not exist.")
		return
	}
	if strings.EqualFold(r.URL.Path, container) {
		if q.Get("restype") != "container" || q.Get("comp") != "list" {
			writeStorageError(w, http.StatusBadRequest, "InvalidQueryParameterValue", "the test serves List Blobs alone on a container")
			return
		}
		a.listBlobs(w, r, blobs, size)
		return
	}
	name := r.URL.Path[len(container)+1:]
	i := slices.IndexFunc(blobs, func(b Blob) bool { return b.Name == name })
	if i < 0 {
		writeStorageError(w, http.StatusNotFound, "BlobNotFound", "The specified blob does not exist.")
		return
	}
	b := blobs[i]
	if m := r.Header.Get("If-Match"); m != "" && m != b.etag() {
		writeStorageError(w, http.StatusPreconditionFailed, "ConditionNotMet", "The condition specified using HTTP conditional header(s) is not met.")
		return
	}
	body, status := b.Body, http.StatusOK
	h := w.Header()
	if rg := strings.TrimPrefix(r.Header.Get("x-ms-range"), "bytes="); rg != "" {
		from, to, _ := strings.Cut(rg, "-")
		f, err1 := strconv.Atoi(from)
		t, err2 := strconv.Atoi(to)
		if err1 != nil || f >= len(body) || err2 == nil && t < f {
			writeStorageError(w, http.StatusRequestedRangeNotSatisfiable, "InvalidRange", "The range specified is invalid for the current size of the resource.")
			return
		}
		if err2 != nil || t >= len(body) {
			t = len(body) - 1
		}
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", f, t, len(body)))
		body, status = body[f:t+1], http.StatusPartialContent
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Last-Modified", b.Modified.UTC().Format(http.TimeFormat))
	h.Set("ETag", b.etag())
	h.Set("x-ms-blob-type", "BlockBlob")
	h.Set("x-ms-version", "2025-11-05")
	h.Set("Accept-Ranges", "bytes")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// listBlobs answers List Blobs: the container's blobs whose names begin
// with the prefix, in the order of their names, from the marker on.
func (a *API) listBlobs(w http.ResponseWriter, r *http.Request, blobs []Blob, size int) {
	q := r.URL.Query()
	prefix := q.Get("prefix")
	var names []Blob
	for _, b := range blobs {
		if strings.HasPrefix(b.Name, prefix) {
			names = append(names, b)
		}
	}
	slices.SortFunc(names, func(x, y Blob) int { return strings.Compare(x.Name, y.Name) })
	from, _ := strconv.Atoi(q.Get("marker"))
	to := min(from+size, len(names))
	type props struct {
		Created      string `xml:"Creation-Time"`
		LastModified string `xml:"Last-Modified"`
		Etag         string `xml:"Etag"`
		Length       int    `xml:"Content-Length"`
		Type         string `xml:"Content-Type"`
		BlobType     string `xml:"BlobType"`
	}
	type item struct {
		Name       string `xml:"Name"`
		Properties props  `xml:"Properties"`
	}
	res := struct {
		XMLName    xml.Name `xml:"EnumerationResults"`
		Endpoint   string   `xml:"ServiceEndpoint,attr"`
		Container  string   `xml:"ContainerName,attr"`
		Prefix     string   `xml:"Prefix"`
		Marker     string   `xml:"Marker"`
		Blobs      []item   `xml:"Blobs>Blob"`
		NextMarker string   `xml:"NextMarker"`
	}{Endpoint: a.URL + "/", Container: r.URL.Path, Prefix: prefix, Marker: q.Get("marker")}
	for _, b := range names[min(from, len(names)):to] {
		t := b.Modified.UTC().Format(http.TimeFormat)
		res.Blobs = append(res.Blobs, item{b.Name, props{t, t, b.etag(), len(b.Body), "application/octet-stream", "BlockBlob"}})
	}
	if to < len(names) {
		res.NextMarker = strconv.Itoa(to)
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("x-ms-version", "2025-11-05")
	w.Write([]byte(xml.Header))
	xml.NewEncoder(w).Encode(res)
}

// writeStorageError answers an error as Azure Storage writes it: its code
// in x-ms-error-code, and an XML body whose message ends in the request's
// ID and time.
func writeStorageError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("x-ms-error-code", code)
	w.WriteHeader(status)
	var b strings.Builder
	xml.EscapeText(&b, []byte(message+"\nRequestId:00000000-0000-0000-0000-000000000000\nTime:"+time.Now().UTC().Format(time.RFC3339Nano)))
	fmt.Fprintf(w, "%s<Error><Code>%s</Code><Message>%s</Message></Error>", xml.Header, code, b.String())
}
