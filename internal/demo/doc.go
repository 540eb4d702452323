// Package demo writes a sample log: fifteen months in the life of three
// partner organisations and four customers, so that a newcomer sees real
// answers at once. The same seed always gives the same log.
//
// The stories in it:
//   - contoso: two partners develop one app. Fabrikam builds "expenses";
//     the customer's own carol becomes a co-owner (she holds no link, so
//     nothing changes); Northwind's bob joins as co-owner and, as the latest
//     association, takes the credit. Fabrikam also runs a Customer Insights
//     instance there.
//   - litware: a hand-over. Fabrikam's dave owns "field-service" until it is
//     handed to Northwind's erin. Fabrikam's gina changes her link from one
//     Fabrikam location to another, and is later disabled when she leaves:
//     her "timesheets" app goes unattributed.
//   - adatum: an implementer and a support partner. Fabrikam's frank
//     implements "onboarding"; Tailspin's hana is added as co-owner for
//     support and takes the credit, until frank's next edit renews his
//     association and brings it back. hana also co-owns a flow, where
//     co-owners never count.
//   - woodgrove: a service principal of Fabrikam's owns a model-driven app
//     and a Power BI dataset in production, and a canvas app in a sandbox
//     that is promoted to production; it imports a solution that adds a
//     flow.
//   - fourthcoffee, on Azure: the management group fourthcoffee-platform
//     holds the subscriptions fc-prod and fc-dev. Fabrikam manages it
//     through Azure Lighthouse: its service principal fabrikam-ops, in
//     Fabrikam's own tenant fabrikam-hq, is Contributor on the group.
//     Northwind's ivan is eligible for Owner on fc-prod and activates it a
//     few hours at a time; Tailspin's jack holds Reader on fc-dev and earns
//     nothing; Fabrikam's kim works on fc-dev's data through the customer's
//     group data-team. February and March 2026 have daily costs.
package demo
