// Package collect reads what pal needs straight from Microsoft's APIs —
// Azure Resource Manager through the Azure SDK for Go's clients; Microsoft
// Graph, the partner link, the Power Platform admin API and the Office 365
// Management Activity API through azcore's pipeline; Cost Management's
// exports in a storage account through azblob — and hands each page, as
// the API wrote it, to the readers of pal import (package imports): a
// record fetched and a record exported become the same event, with the
// same id. Where the export is a tool's object rather than the API's (the
// Power Platform admin cmdlets'), the page becomes that object first. Each
// source of each tenant diffs against the log so far, as pal import does,
// and is written whole or not at all, so that a run repeated adds nothing
// and a run that fails part-way leaves no half of a snapshot in the log.
package collect
