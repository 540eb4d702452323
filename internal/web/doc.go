// Package web is pal's web UI: one page of HTML, a script and a style
// sheet, embedded in the binary, that read the API with the token the user
// logs in with. What each role sees is decided by the API on the server;
// the pages only show it.
package web
