// Package imports turns what partners and customers can export today —
// Azure CLI and REST outputs, Cost Management exports, admin cmdlets,
// audit searches — into log v1 events. Each source is a small file of its
// own; all of them read their files through this one: JSON (an array, an
// object holding a "value" array, or one object a line) or CSV, with the
// untidiness of real exports forgiven and each unreadable row reported
// with its file, line and reason.
package imports
