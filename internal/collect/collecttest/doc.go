// Package collecttest serves Microsoft's APIs as pal collect reads them,
// from memory, for tests: Azure Resource Manager, Microsoft Graph, the
// Power Platform admin API, the Office 365 Management Activity API and
// Azure Storage's Blob service on one TLS server, answering with the
// shapes the real APIs answer (the examples of Azure/azure-rest-api-specs,
// of Graph's and the Management Activity API's documentation, of the
// admin cmdlets' sources), in pages, with the failures a test asks for.
// Its Credential hands out tokens the server checks: for the right
// tenant, the right API, and not expired.
package collecttest
