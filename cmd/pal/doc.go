// Command pal is partner attribution for partner admin links: it replays a
// log of events and says who is credited for every resource, and why.
package main
