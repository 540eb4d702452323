// pal's pages: they read the API with the token the user logged in with.
// Everything shown is what the API returns for that token; nothing is
// filtered here. A page shows one month: every section of it is as of that
// month's end, or now for the present's month, and says so. Tables are
// read from /v1/tables whole: the server pages, sorts and filters them,
// and says how many rows there are; a download saves every row. Charts are
// drawn by charts.js.
"use strict";

const main = document.getElementById("main");
const pointNames = { net_customer_adds: "Net customer adds", intermediate: "Intermediate certifications",
  advanced: "Advanced certifications", usage_growth: "Usage growth", deployments: "Deployments" };
const kindWords = { canvas_app: "canvas app", model_driven_app: "model-driven app", flow: "flow", powerbi_dataset: "Power BI dataset",
  bot: "Copilot Studio bot", pages_site: "Power Pages site", ci_instance: "Customer Insights instance", azure_resource: "Azure resource" };
const kindOfWords = Object.fromEntries(Object.entries(kindWords).map(([k, v]) => [v, k]));
const roleWords = { owner: "owner", coowner: "co-owner", contributor: "contributor" };

// h builds an element (el, in charts.js).
const h = el;

function token() { return localStorage.getItem("pal.token"); }

// Problem is an error as the pages show it: in words, the code after them.
class Problem extends Error {
  constructor(words, code) {
    super(code ? `${words} (${code})` : words);
    this.words = words;
    this.code = code;
  }
}
function capital(s) { return s ? s[0].toUpperCase() + s.slice(1) : s; }
// problemOf reads the service's error: a message that starts with a
// refusal code ("invalid_partner_id: …") shows that code after its words,
// any other the error's code.
function problemOf(body, res) {
  const e = (body && body.error) || {};
  let words = e.message || "", code = e.code || `HTTP ${res.status}`;
  const m = /^([a-z][a-z_]+): (.+)$/s.exec(words);
  if (m) [, code, words] = m;
  return new Problem(capital(words || `The service answered ${res.status} ${res.statusText}`), code);
}

async function request(path, opts = {}) {
  let res;
  try {
    res = await fetch(path, { ...opts, headers: { ...(opts.headers || {}), Authorization: "Bearer " + token() } });
  } catch (err) {
    throw new Problem("The service cannot be reached: check the connection and try again", "network_error");
  }
  if (res.status === 401) { localStorage.removeItem("pal.token"); location.hash = "#/login"; throw new Problem("Your token is not accepted: log in again", "Unauthorized"); }
  if (!res.ok) throw problemOf(await res.json().catch(() => ({})), res);
  return res;
}
async function api(path, opts = {}) { return (await request(path, opts)).json(); }

// fill replaces an element's children, leaving out the absent ones.
function fill(node, ...children) { node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false)); }
function show(...children) { fill(main, ...children); }
function errorLine(err, id) { return h("p", { class: "error", id, role: "alert" }, String(err.message || err)); }
function fail(err) { show(h("h1", { class: "sr-only" }, "Something went wrong"), errorLine(err, "error")); }

// Words and numbers.
const fmt = (n) => Number(n || 0).toLocaleString("en", { maximumFractionDigits: 2 });
const amount = (n, currency) => `${currency} ${Number(n || 0).toLocaleString("en", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
function plural(n, noun) { return `${fmt(n)} ${n === 1 ? noun[0] : noun[1]}`; }
function when(t) { return t ? t.slice(0, 16).replace("T", " ") + " UTC" : ""; }
function monthName(m) { return new Date(`${m}-01T00:00:00Z`).toLocaleString("en", { month: "long", year: "numeric", timeZone: "UTC" }); }
function monthShort(m) { return new Date(`${m}-01T00:00:00Z`).toLocaleString("en", { month: "short", year: "2-digit", timeZone: "UTC" }); }
// asOf says which instant a section shows.
function asOf(t) { return t.current ? `as of now, ${when(t.at)} (the latest event)` : `as of the end of ${monthName(t.month)}, ${when(t.at)}`; }
function partnerText(id, name) { return id ? (name ? `${id} (${name})` : id) : "no one"; }
const seconds = (t) => new Date(t).getTime() / 1000;
// scoreOutOf is the most the capability score counts for, as the service
// scores: the sum of its subcategories' maxima.
const scoreOutOf = (me) => Object.values(me.score_max).reduce((a, b) => a + b, 0);

const palette = ["#2457c5", "#b4541b", "#1b7a50", "#8a3fb5", "#8f6a00", "#b3264f", "#1f7a94", "#5d6b1f"];
// colours gives each partner of a page its own colour; grey is no one.
function colours(partners) {
  const seen = [...new Set(partners.filter(Boolean))];
  return (p) => (p ? palette[seen.indexOf(p) % palette.length] : "#5b6b7d");
}
// The workloads in the order the charts stack them, each with its colour.
const workloads = [["power_apps", "#2457c5"], ["power_automate", "#b4541b"], ["power_bi", "#8f6a00"], ["power_pages", "#8a3fb5"],
  ["copilot_studio", "#1f7a94"], ["customer_insights", "#1b7a50"]];

function resourceHref(tenant, resource, at) {
  return `#/resource/${encodeURIComponent(tenant)}/${encodeURIComponent(resource)}${at ? "/" + encodeURIComponent(at) : ""}`;
}
// table is a table in a box that scrolls sideways on a narrow screen; the
// box takes the focus, so that a keyboard scrolls it too.
function table(head, rows, attrs = {}, label = "table") {
  return h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": label },
    h("table", attrs, h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c)))))));
}
function card(label, value, id) {
  return h("div", { class: "card", id: "card-" + id }, h("div", { class: "value" }, value), h("div", { class: "label" }, label));
}
// listSome shows the first few of a list, the rest a click away.
function listSome(items, few = 3) {
  if (items.length <= few) return items.join(", ");
  return h("details", {}, h("summary", {}, `${items.slice(0, few).join(", ")} and ${items.length - few} more`), items.slice(few).join(", "));
}
// save downloads a text as a file.
function save(name, blob) {
  const a = h("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

// The cells of the tables, by column key; the rest show as they come.
const cells = {
  resource: (r, t) => {
    const name = r.name && r.name !== r.resource ? r.name : "";
    return [h("a", { href: resourceHref(r.tenant, r.resource, t.current ? "" : t.at), title: r.resource }, name || r.resource),
      name && !r.resource.startsWith("/") ? h("span", { class: "id" }, " " + r.resource) : null];
  },
  partner: (r) => partnerText(r.partner, r.org_name),
  value: (r, t) => valueText(r, t.currency),
  status: (r) => r.status === "disabled" ? h("span", { class: "loss" }, "disabled: its link does not count") : r.status,
  which: (r) => listSome(String(r.which || "").split(", ").filter(Boolean)),
  change: (r) => h("span", { class: /^gained/.test(r.change) ? "gain" : /^lost/.test(r.change) ? "loss" : "" }, r.change),
  note: (r) => /role alone/.test(r.note) ? h("span", { class: "loss" }, r.note) : r.note,
};
// valueText says what a row carries: MCV, ACR in its currency, or both.
function valueText(r, currency) {
  const parts = [];
  if (r.mcv) parts.push(`MCV ${fmt(r.mcv)}`);
  if (r.acr) parts.push(amount(r.acr, currency));
  return parts.length ? parts.join(" + ") : h("span", { class: "muted" }, "nothing this month");
}
function cellOf(col, r, t, own = {}) {
  const render = own[col.key] || cells[col.key];
  if (render) return render(r, t);
  const v = r[col.key];
  if (v === null || v === undefined || v === "") return "";
  switch (col.type) {
    case "date": return String(v).slice(0, 10);
    case "time": return when(v);
    case "money": return amount(v, t.currency);
    case "number": return fmt(v);
    case "bool": return v ? "yes" : "no";
  }
  return String(v);
}

// tableView is a table of /v1/tables/NAME: paged, sorted and filtered on
// the server, with its total and the instant it is as of, and a button that
// downloads every row as CSV. opts.hide lists columns not shown (still in
// the download); opts.empty says what an empty table means; opts.loaded
// hears each answer. The total is read out when it changes.
function tableView(id, name, params, opts = {}) {
  const st = { offset: 0, limit: opts.limit || 25, sort: "", order: "", q: "" };
  const title = opts.title || name;
  const status = h("p", { class: "total", id: id + "-total", "aria-live": "polite" }, h("span", { class: "muted" }, "Loading…"));
  const body = h("div", {});
  const box = h("div", { class: "table-view", id: id + "-view" }, status, body);
  let timer = null;
  const query = (extra) => new URLSearchParams(Object.entries({ ...params, ...(st.sort ? { sort: st.sort, order: st.order } : {}),
    ...(st.q ? { q: st.q } : {}), ...extra }).filter(([, v]) => v !== "" && v !== undefined && v !== null)).toString();
  const filter = h("input", { type: "search", id: id + "-filter", placeholder: "Filter rows", "aria-label": `Filter the rows of ${title}`,
    oninput: () => { clearTimeout(timer); timer = setTimeout(() => { st.q = filter.value.trim(); st.offset = 0; load(); }, 250); } });
  const load = async () => {
    let t;
    try { t = await api(`/v1/tables/${name}?${query({ offset: st.offset, limit: st.limit })}`); } catch (err) {
      fill(status, errorLine(err)); return;
    }
    if (opts.loaded) opts.loaded(t);
    st.sort = t.sort; st.order = t.order;
    const cols = t.columns.filter((c) => !(opts.hide || []).includes(c.key));
    const head = cols.map((c) => h("button", { type: "button", class: "sort", "aria-label": `Sort by ${c.label}${st.sort === c.key ? (st.order === "desc" ? ", sorted descending" : ", sorted ascending") : ""}`,
      onclick: () => { st.order = st.sort === c.key && st.order === "asc" ? "desc" : "asc"; st.sort = c.key; st.offset = 0; load(); } },
    c.label, st.sort === c.key ? (st.order === "desc" ? " ▼" : " ▲") : ""));
    if (t.all === 0) {
      fill(status, h("span", { id, class: "muted" }, opts.empty || `No ${t.noun[1]} ${asOf(t)}.`));
      fill(body);
      return;
    }
    fill(status, `${plural(t.total, t.noun)}${t.q ? ` match “${t.q}” (of ${fmt(t.all)})` : ""}, ${asOf(t)}.`);
    const download = h("button", { type: "button", class: "secondary", id: "download-" + id, onclick: async () => {
      try {
        const res = await request(`/v1/tables/${name}?${query({ format: "csv" })}`);
        save(`${name}-${t.month}.csv`, await res.blob());
      } catch (err) { fill(status, errorLine(err)); }
    } }, `Download ${t.total === 1 ? "the row" : `all ${fmt(t.total)} rows`} as CSV`);
    const from = t.total ? t.offset + 1 : 0, to = t.offset + t.rows.length;
    const pager = h("div", { class: "pager" },
      h("button", { type: "button", class: "secondary", id: id + "-previous", disabled: t.offset === 0 ? true : null,
        onclick: () => { st.offset = Math.max(0, st.offset - st.limit); load(); } }, "Previous"),
      h("span", { id: id + "-rows" }, `Rows ${fmt(from)}–${fmt(to)} of ${fmt(t.total)}`),
      h("button", { type: "button", class: "secondary", id: id + "-next", disabled: to >= t.total ? true : null,
        onclick: () => { st.offset += st.limit; load(); } }, "Next"));
    const focused = document.activeElement === filter;
    fill(body, h("div", { class: "tools" }, filter, download),
      table(head, t.rows.map((r) => cols.map((c) => cellOf(c, r, t, opts.cells))), { id }, title),
      t.total > t.rows.length || t.offset > 0 ? pager : null);
    if (focused) filter.focus();
  };
  load();
  return box;
}

// allRows reads every row of a table, a page of 1,000 at a time.
async function allRows(name, params) {
  let rows = [];
  for (let offset = 0; ; offset += 1000) {
    const t = await api(`/v1/tables/${name}?${new URLSearchParams({ ...params, offset, limit: 1000 })}`);
    rows = rows.concat(t.rows);
    if (rows.length >= t.total || t.rows.length === 0) return { ...t, rows };
  }
}

// The month a page shows: every month of the log, the latest with data
// by default (not the wall clock's).
async function monthsOf(params) {
  return api(`/v1/tables/months?${new URLSearchParams({ ...params, limit: 1000 })}`);
}
function pickMonth(months, asked) {
  if (asked && months.rows.some((r) => r.month === asked)) return asked;
  const withData = months.rows.find((r) => r.data);
  return (withData || months.rows[0] || { month: "" }).month;
}
function monthPicker(months, month, go) {
  return h("label", { class: "picker" }, "Month ",
    h("select", { id: "month", onchange: (e) => go(e.target.value) },
      months.rows.map((r) => h("option", r.month === month ? { value: r.month, selected: true } : { value: r.month },
        `${r.month}${r.current ? " (now)" : ""}${r.data ? "" : " (no data)"}`))));
}

// Charts of months: the year up to the month shown.

// monthCharts draws a scope's MAU and MCV by workload, and its Azure
// consumed revenue when it has any, over the twelve months up to month.
async function monthCharts(months, month, scope, currency) {
  const rows = months.rows.filter((r) => r.month <= month).slice(0, 12).reverse();
  const wl = await api(`/v1/tables/workloads?${new URLSearchParams({ ...scope, limit: 1000 })}`);
  const by = {};
  for (const r of wl.rows) (by[r.month] = by[r.month] || {})[r.workload] = r;
  const categories = rows.map((r) => ({ label: monthName(r.month), short: monthShort(r.month) }));
  const known = new Set(workloads.map(([w]) => w));
  const all = workloads.concat([...new Set(wl.rows.map((r) => r.workload))].filter((w) => !known.has(w)).map((w) => [w, "#5b6b7d"]));
  const label = (w) => (wl.rows.find((r) => r.workload === w) || { label: w }).label;
  const split = (key, skip) => all.filter(([w]) => !skip.includes(w))
    .map(([w, colour]) => ({ label: label(w), colour, values: rows.map((r) => ((by[r.month] || {})[w] || {})[key] || 0) }));
  const range = rows.length ? `${monthName(rows[0].month)} to ${monthName(rows[rows.length - 1].month)}` : "";
  const out = [h("div", { class: "charts" },
    seriesChart({ id: "chart-mau", title: "Monthly active users by workload", about: `(users a month, ${range})`, unit: "users",
      categories, series: split("mau", ["customer_insights"]), stacked: true, format: (v) => `${fmt(v)} users` }),
    seriesChart({ id: "chart-mcv", title: "MCV by workload", about: "(monthly consumption value: users, or profiles, times the workload's rate)", unit: "MCV",
      categories, series: split("mcv", []), stacked: true, format: (v) => `MCV ${fmt(v)}` }))];
  if (rows.some((r) => r.acr > 0 || r.pec_eligible_cost > 0)) {
    out.push(h("div", { class: "charts" }, seriesChart({ id: "chart-azure", title: "Azure consumed revenue and partner earned credit", about: `(${currency} a month)`,
      unit: currency, categories, format: (v) => amount(v, currency), series: [
        { label: "ACR", colour: "#2457c5", values: rows.map((r) => r.acr) },
        { label: "PEC-eligible cost", colour: "#b4541b", bars: false, values: rows.map((r) => r.pec_eligible_cost) },
        { label: "Partner earned credit", colour: "#1b7a50", bars: false, values: rows.map((r) => r.pec_credit) }] })));
  }
  return out;
}

// Pages.

function loginPage() {
  const input = h("input", { type: "password", id: "token", placeholder: "pal_…", autocomplete: "off", required: true });
  show(h("h1", { id: "title" }, "Log in"),
    h("form", { class: "login", id: "login", onsubmit: (e) => {
      e.preventDefault();
      localStorage.setItem("pal.token", input.value.trim());
      location.hash = "#/";
      route();
    } },
    h("label", { for: "token" }, "Paste a token of this service: one from pal token issue, or your organisation's sign-in token."),
    input, h("button", { type: "submit", id: "login-button" }, "Log in")));
}

async function homePage(me) {
  location.hash = { "partner-reader": "#/partner", "tenant-admin": "#/tenant", operator: "#/programme" }[me.role] || "#/link";
}

// partnerPage is an organisation's dashboard for a month: its reader's
// own, or any organisation's for the operator, who picks it.
async function partnerPage(me, orgParam, monthParam) {
  const org = me.role === "operator" ? orgParam : me.org;
  if (!org) return programmePage(me);
  const scope = me.role === "operator" ? { org } : {};
  const months = await monthsOf(scope);
  if (months.rows.length === 0) return me.show(h("h1", { id: "title" }, "Nothing yet"), h("p", {}, "The log is empty: no month to show."));
  const month = pickMonth(months, monthParam);
  const frame = months.rows.find((r) => r.month === month);
  const params = { ...scope, month };
  const [score, credited] = await Promise.all([api(`/v1/reports/pcs?month=${month}&org=${org}`),
    api(`/v1/tables/credited?${new URLSearchParams({ ...params, limit: 1 })}`)]);
  const name = credited.org_name || org;
  const currency = credited.currency;
  const go = (m) => { location.hash = `#/partner/${org}/${m}`; };
  const charts = await monthCharts(months, month, scope, currency);
  const max = me.score_max;
  const points = h("div", { class: "points", id: "score" }, Object.keys(pointNames).map((k) => [
    h("span", { id: "points-" + k }, pointNames[k]),
    h("span", { class: "meter", role: "meter", "aria-valuenow": score.points[k], "aria-valuemin": 0, "aria-valuemax": max[k], "aria-labelledby": "points-" + k },
      h("span", { style: `width:${max[k] > 0 ? Math.min(100, (100 * score.points[k]) / max[k]) : 0}%` })),
    h("span", {}, `${score.points[k]} / ${max[k]}`)]));
  me.show(
    h("h1", { id: "title" }, `${name}: credit in ${month}`),
    h("div", { class: "frame" }, monthPicker(months, month, go),
      h("p", { id: "frame" }, `Every section shows ${monthName(month)} ${asOf(frame)}.`)),
    frame.data ? null : h("p", { class: "notice", id: "empty-month" }, `No usage, profiles or Azure consumption is credited to ${name} in ${monthName(month)}: the month is empty.`),
    h("div", { class: "cards" },
      card("Customers", fmt(frame.customers), "customers"), card("Credited resources", fmt(credited.all), "resources"),
      card("MCV", fmt(frame.mcv), "mcv"), card("Deployments", fmt(frame.deployments), "deployments"),
      card("Capability score", `${score.total} / ${scoreOutOf(me)}`, "total")),
    h("h2", {}, "Usage and MCV, month by month"), charts,
    h("h2", {}, `Partner Capability Score, ${month}: ${score.qualified ? "qualified" : "not qualified"}`), points,
    section("Credit gained and lost", `Every change of credit ${org === me.org ? "your organisation" : name} gained or lost in ${monthName(month)}.`,
      tableView("changes", "changes", params, { title: "credit changes", hide: ["from", "to", "name"], empty: `No credit was gained or lost in ${monthName(month)}.` })),
    frame.acr > 0 || frame.pec_eligible_cost > 0 ? [
      h("h2", {}, `Azure consumed revenue in ${monthName(month)}`),
      h("div", { class: "cards", id: "azure-cards" },
        card("ACR", amount(frame.acr, currency), "acr"), card("PEC-eligible cost", amount(frame.pec_eligible_cost, currency), "pec-eligible"),
        card("Partner earned credit", amount(frame.pec_credit, currency), "pec-credit"), card("Azure customers", fmt(frame.azure_customers), "azure-customers")),
      tableView("azure", "azure", params, { title: "Azure subscriptions" })] : null,
    section("Where the credit is missing", "Resources on which your linked accounts have a role but another partner, or no one, is credited; the most valuable first. The value is what the resource carried that month for others.",
      tableView("missing", "missing", params, { title: "missing credit", hide: ["name", "kind", "partner", "org_name", "reason", "other", "other_since", "mau", "profiles", "mcv", "acr"],
        empty: `Nowhere ${asOf(frame)}: every resource the linked accounts work on is credited.` })),
    section("Credit that ends when one person leaves", "Resources credited through one account only, grouped by that account, the most valuable first.",
      tableView("at-risk", "at-risk", params, { title: "credit at risk", hide: ["org_name", "mau", "profiles", "mcv", "acr"], empty: `No credit hangs on one account ${asOf(frame)}.` })),
    section("Where the links are", "Every account linked to one of the organisation's location IDs, in every tenant, with what it carries.",
      tableView("links", "links", params, { title: "links", hide: ["org_name"], empty: "No account links one of the organisation's location IDs." })),
    section("Credited resources", `What each carried in ${monthName(month)}, the most valuable first.`,
      tableView("resources", "credited", params, { title: "credited resources", hide: ["name", "org_name", "environment", "mau", "profiles", "mcv", "acr"],
        empty: `No resource is credited ${asOf(frame)}.` })));
}

function section(title, about, body) {
  return [h("h2", {}, title), about ? h("p", { class: "muted" }, about) : null, body];
}

// fellMost lists the organisations whose MCV or ACR fell most from the
// month before to month, the largest fall first.
async function fellMost(month, currency) {
  const before = new Date(`${month}-01T00:00:00Z`);
  before.setUTCMonth(before.getUTCMonth() - 1);
  const previous = before.toISOString().slice(0, 7);
  const list = async (key, id, what, money) => {
    const t = await api(`/v1/tables/organisations?${new URLSearchParams({ month, sort: key + "_change", order: "asc", limit: 5 })}`);
    const fell = t.rows.filter((r) => r[key + "_change"] < 0);
    const say = (v) => (money ? amount(v, currency) : fmt(v));
    return h("div", { class: "fell" }, h("h3", {}, `${what} fell most`),
      fell.length === 0 ? h("p", { class: "muted", id }, `No organisation's ${what} fell from ${monthName(previous)} to ${monthName(month)}.`) :
        h("ol", { id }, fell.map((r) => h("li", {},
          h("a", { href: `#/partner/${r.org}/${month}` }, r.org_name ? `${r.org_name} (${r.org})` : r.org), ": ",
          `${what} ${say(r[key + "_before"])} → ${say(r[key])}, down ${say(-r[key + "_change"])}`,
          r[key + "_before"] > 0 ? ` (${Math.round((-100 * r[key + "_change"]) / r[key + "_before"])}%)` : ""))));
  };
  return h("div", { class: "falls" }, await list("mcv", "fell-mcv", "MCV", false), await list("acr", "fell-acr", "ACR", true));
}

// programmePage is the operator's view of the programme: every
// organisation in a month beside the month before, who fell most, its
// charts, and what comes in.
async function programmePage(me, monthParam) {
  const months = await monthsOf({});
  if (months.rows.length === 0) return me.show(h("h1", { id: "title" }, "The programme"), h("p", {}, "The log is empty: no month to show."));
  const month = pickMonth(months, monthParam);
  const frame = months.rows.find((r) => r.month === month);
  const currency = months.currency;
  const [intake, falls, charts] = await Promise.all([api("/v1/intake"), fellMost(month, currency), monthCharts(months, month, {}, currency)]);
  const held = Object.entries(intake.held_by_code).sort();
  const own = {
    org_name: (r) => [r.org_name ? `${r.org_name} (${r.org})` : r.org, " ", h("a", { href: `#/partner/${r.org}/${month}`, class: "dashboard-link",
      "aria-label": `dashboard of ${r.org_name || r.org}` }, "dashboard")],
    score: (r) => `${r.score} / ${scoreOutOf(me)}`,
  };
  const days = intake.days;
  me.show(h("h1", { id: "title" }, "The programme"),
    h("div", { class: "frame" }, monthPicker(months, month, (m) => { location.hash = `#/programme/${m}`; }),
      h("p", { id: "frame" }, `${monthName(month)} ${asOf(frame)}.`)),
    h("h2", {}, `Who fell most, ${monthName(month)} against the month before`), falls,
    h("h2", {}, "Usage and MCV of the programme, month by month"), charts,
    section(`Organisations in ${month}`, "MCV and ACR beside the month before: sort by a change to see who fell most.",
      tableView("programme", "organisations", { month }, { title: "organisations", hide: ["org"], cells: own })),
    h("h2", {}, "What comes in"),
    h("div", { class: "charts" }, seriesChart({ id: "intake", title: "Events stored a day", about: `(the ${days.length} days to ${days.length ? days[days.length - 1].day : ""}, by the day of their time)`,
      unit: "events", categories: days.map((d) => ({ label: d.day, short: d.day.slice(5) })), format: (v) => plural(v, ["event", "events"]),
      series: [{ label: "Events", colour: "#2457c5", values: days.map((d) => d.events) },
        { label: "Consumption records (files)", colour: "#b35900", values: days.map((d) => d.consumption) }] })),
    h("p", { id: "held" }, intake.held === 0 ? "No event is held." :
      `${plural(intake.held, ["event", "events"])} held (stored, refused by the state as it stands): ${held.map(([c, n]) => `${c} ${n}`).join(", ")}.`));
}

// explanationBox is where a timeline's explanations go; it is read out
// when it changes.
function explanationBox(hint) {
  return h("div", { id: "explanation", "aria-live": "polite" }, h("p", { class: "muted" }, hint));
}

async function resourcePage(me, tenant, resource, at) {
  const q = `tenant=${encodeURIComponent(tenant)}&resource=${encodeURIComponent(resource)}`;
  const tl = await api(`/v1/timeline?${q}${at ? "&at=" + encodeURIComponent(at) : ""}`);
  if (tl.azure) return azureResourcePage(me, tenant, resource, q, tl.intervals);
  const ivs = tl.intervals;
  if (ivs.length === 0) return me.fail(new Error(`${resource} has no history in ${tenant}`));
  // What held at the start of each interval: the environment's type, and
  // the owner and co-owners with their links. An instant the caller may
  // not read of (before its accounts had a role) says so.
  const hidden = { counted: false, env_type: "before your accounts had a role", environment: "", candidates: [], hidden: true };
  // An interval that began before the caller's accounts had a role is
  // explained at its end.
  const last = (iv) => iv.to ? new Date(new Date(iv.to).getTime() - 1000).toISOString().slice(0, 19) + "Z" : me.now;
  const states = await Promise.all(ivs.map((iv) => api(`/v1/explain?${q}&at=${iv.from}`)
    .catch(() => api(`/v1/explain?${q}&at=${last(iv)}`)).catch(() => hidden)));
  const names = Object.assign({}, ...states.map((s) => s.org_names || {}));
  const accounts = (st) => st.hidden ? st.env_type : (st.candidates || []).map((c) => `${c.account} (${roleWords[c.role] || c.role}, ${c.partner || "no link"})`).join("; ");
  const start = seconds(ivs[0].from), end = Math.max(seconds(me.now), start + 86400);
  const colour = colours(ivs.map((iv) => iv.partner));
  const explanation = explanationBox("Pick an instant on the timeline (click, tap, or Enter), or an interval below, to see why at that instant.");
  const span = (iv) => `${iv.from.slice(0, 10)} to ${iv.to ? iv.to.slice(0, 10) : "now"}`;
  const bars = ivs.flatMap((iv, i) => {
    const from = seconds(iv.from), to = iv.to ? seconds(iv.to) : end, st = states[i];
    const who = iv.partner ? `${partnerText(iv.partner, names[iv.org])}, through ${iv.account}` : `no one: ${iv.reason.replaceAll("_", " ")}`;
    return [
      { lane: 0, from, to, colour: colour(iv.partner), dark: true, text: iv.partner || "no one", tip: [span(iv), `Credited: ${who}`] },
      { lane: 1, from, to, colour: st.hidden ? "#e6ebf2" : st.counted ? "#cfe3d6" : "#f1d9c9", text: st.hidden ? "" : st.env_type,
        tip: [span(iv), st.hidden ? st.env_type : `Environment ${st.environment}: ${st.env_type}${st.counted ? "" : ", not counted"}`] },
      { lane: 2, from, to, colour: "#e6ebf2", text: st.hidden ? "" : plural((st.candidates || []).length, ["account", "accounts"]),
        tip: [span(iv), accounts(st) || "no account"] }];
  });
  const name = states.find((s) => s.name)?.name;
  me.show(h("h1", { id: "title" }, `${name ? name + " — " : ""}${resource} in ${tenant}`),
    h("p", { class: "muted" }, "Over time: who is credited (grey: no one), the environment's type, and the accounts that could be credited."),
    timelineChart({ id: "timeline", title: `Credit of ${name || resource} over time`, lanes: ["Credited partner", "Environment", "Owner and co-owners"],
      bars, start, end, pick: (t) => explain(explanation, tenant, resource, new Date(t * 1000).toISOString().slice(0, 19) + "Z") }),
    table(["From", "To", "Partner", "Account", "Environment", "Owner and co-owners", ""],
      ivs.map((iv, i) => [iv.from.slice(0, 10), iv.to ? iv.to.slice(0, 10) : "now", partnerText(iv.partner, names[iv.org]), iv.account || "—",
        states[i].env_type, accounts(states[i]),
        h("button", { type: "button", class: "secondary why", "aria-label": `Why, from ${iv.from.slice(0, 10)}`,
          onclick: () => explain(explanation, tenant, resource, states[i].at || iv.from) }, "Why")]), { id: "intervals" }, "the intervals of credit"),
    explanation);
}

async function explain(into, tenant, resource, at) {
  try {
    const x = await api(`/v1/explain?tenant=${encodeURIComponent(tenant)}&resource=${encodeURIComponent(resource)}&at=${at}`);
    const names = x.org_names || {};
    fill(into, h("h2", {}, `Why, at ${when(at)}`),
      h("p", { id: "verdict" }, x.summary),
      table(["Account", "Role", "Partner ID", "Associated", "Eligible"], x.candidates.map((c) =>
        [c.account, roleWords[c.role] || c.role, c.partner ? partnerText(c.partner, names[c.org]) : "no link", c.association.slice(0, 10),
          c.eligible ? "yes" : `no: ${c.reason.replaceAll("_", " ")}`]), {}, "the candidates"));
  } catch (err) {
    fill(into, errorLine(err));
  }
}

// behind lists the assignments through which a location is recognised, from
// an Azure explanation.
function behind(x, partner) {
  if (x.hidden) return "before your accounts had a role";
  return x.assignments.flatMap((a) => a.accounts.filter((c) => c.eligible && c.partner === partner)
    .map((c) => `${a.role} on ${a.scope} (${[a.assignment, c.account].filter(Boolean).join(", ")}${a.principal !== c.account ? " in " + a.principal : ""})`)).join("; ");
}

// azureResourcePage shows an Azure resource: a lane per credited partner
// with its intervals and shares, and the assignments behind each.
async function azureResourcePage(me, tenant, resource, q, ivs) {
  if (ivs.length === 0) return me.fail(new Error(`no partner was ever recognised for ${resource} in ${tenant}`));
  const hidden = { hidden: true, assignments: [] };
  const states = await Promise.all(ivs.map((iv) => api(`/v1/explain?${q}&at=${iv.from}`).catch(() => hidden)));
  const partners = [...new Set(ivs.map((iv) => iv.partner))];
  const start = Math.min(...ivs.map((iv) => seconds(iv.from)));
  const end = Math.max(seconds(me.now), start + 86400, ...ivs.map((iv) => iv.to ? seconds(iv.to) : 0));
  const colour = colours(partners);
  const names = Object.assign({}, ...states.map((s) => s.org_names || {}));
  const orgOf = Object.fromEntries(ivs.map((iv) => [iv.partner, iv.org]));
  const short = resource.slice(resource.lastIndexOf("/") + 1);
  const explanation = explanationBox("Pick an instant on the timeline (click, tap, or Enter) to see every assignment at that instant.");
  const bars = ivs.map((iv) => ({ lane: partners.indexOf(iv.partner), from: seconds(iv.from), to: iv.to ? seconds(iv.to) : end,
    colour: colour(iv.partner), alpha: 0.4 + 0.6 * iv.share, dark: iv.share > 0.6, text: iv.share < 1 ? `share ${Math.round(iv.share * 100)}%` : "",
    tip: [`${when(iv.from)} to ${iv.to ? when(iv.to) : "now"}`, `${partnerText(iv.partner, names[iv.org])}, share ${Math.round(iv.share * 1000) / 10}%`] }));
  me.show(h("h1", { id: "title" }, `${short} in ${tenant}`),
    h("p", { class: "muted id" }, resource),
    h("p", { class: "muted" }, "Azure recognition follows role and scope: a lane per partner credited, lighter when it holds a share."),
    timelineChart({ id: "timeline", title: `Recognition of ${short} over time`, lanes: partners.map((p) => partnerText(p, names[orgOf[p]])),
      bars, start, end, pick: (t) => explainAzure(explanation, tenant, resource, new Date(t * 1000).toISOString().slice(0, 19) + "Z") }),
    table(["From", "To", "Partner", "Organisation", "Share", "Assignments behind it"],
      ivs.map((iv, i) => [iv.from.slice(0, 16).replace("T", " "), iv.to ? iv.to.slice(0, 16).replace("T", " ") : "now", iv.partner, names[iv.org] ? `${names[iv.org]} (${iv.org})` : iv.org,
        String(Math.round(iv.share * 1000) / 1000), behind(states[i], iv.partner)]), { id: "intervals" }, "the intervals of recognition"),
    explanation);
}

async function explainAzure(into, tenant, resource, at) {
  try {
    const x = await api(`/v1/explain?tenant=${encodeURIComponent(tenant)}&resource=${encodeURIComponent(resource)}&at=${at}`);
    fill(into, h("h2", {}, `Why, at ${when(at)}`),
      h("p", { id: "verdict" }, x.summary),
      table(["Assignment", "Role", "Scope", "Principal", "Account", "Partner ID", "Counts"], x.assignments.flatMap((a) =>
        (a.accounts.length ? a.accounts : [{ account: "—", partner: "", eligible: false, words: "no account with a link acts through it" }]).map((c) =>
          [a.assignment || "—", a.role, a.scope, !a.principal_tenant || a.principal_tenant === x.tenant ? a.principal : `${a.principal} (${a.principal_tenant})`,
            c.account, c.partner ? partnerText(c.partner, (x.org_names || {})[c.org]) : "no link", c.eligible ? "yes" : `no: ${c.words || c.reason}`])), {}, "the assignments"));
  } catch (err) {
    fill(into, errorLine(err));
  }
}

// tenantPage is a tenant's resources, links and credit changes in a month:
// a tenant administrator's own tenant, every tenant for the operator.
async function tenantPage(me, monthParam) {
  const scope = me.tenant ? { tenant: me.tenant } : {};
  const months = await monthsOf(scope);
  if (months.rows.length === 0) return me.show(h("h1", { id: "title" }, me.tenant ? `Tenant ${me.tenant}` : "All tenants"), h("p", {}, "The log is empty: no month to show."));
  const month = pickMonth(months, monthParam);
  const frame = months.rows.find((r) => r.month === month);
  const params = { ...scope, month };
  const charts = await monthCharts(months, month, scope, months.currency);
  me.show(h("h1", { id: "title" }, me.tenant ? `Tenant ${me.tenant}` : "All tenants"),
    h("div", { class: "frame" }, monthPicker(months, month, (m) => { location.hash = `#/tenant/${m}`; }),
      h("p", { id: "frame" }, `Every section shows ${monthName(month)} ${asOf(frame)}.`)),
    me.tenant ? h("p", {}, h("a", { href: "#/whatif", id: "whatif-link" }, "What if… see who the credit would go to after a change")) : null,
    h("h2", {}, "Usage and MCV, month by month"), charts,
    section("Resources and who is credited", null,
      tableView("resources", "resources", params, { title: "resources", hide: ["name", "org_name", "mau", "profiles", "mcv", "acr"] })),
    me.tenant ? section("Accounts that hold a partner link", null,
      tableView("links", "links", params, { title: "links", hide: ["org_name"], empty: "No account of the tenant holds a partner link." })) : null,
    section("Who took the credit", `Every change of the partner credited for a resource${me.tenant ? " of this tenant" : ""} in ${monthName(month)}. A partner that gains the credit by a role alone — made co-owner or owner, with no edit or publish in the 90 days before — is marked.`,
      tableView("credit-changes", "changes", params, { title: "credit changes", hide: ["change", "name"], empty: `No credit changed hands in ${monthName(month)}.` })));
}

// The what-if's changes, each with the kinds it counts for (SPEC.md
// section 2) and what it asks of its account: any account of the tenant,
// one of the resource's candidates, a co-owner, or a candidate that holds
// a link. Link and unlink count for a resource through its candidates.
const coowned = ["canvas_app", "pages_site"];
const ownedKinds = ["canvas_app", "model_driven_app", "flow", "powerbi_dataset", "bot", "pages_site"];
const whatIfChanges = {
  owner: { words: "make an account the owner", kinds: ownedKinds, account: "any",
    event: (r, a) => ({ type: "resource.owner_changed", resource: r.resource, owner: a }) },
  "add-coowner": { words: "add a co-owner", kinds: coowned, account: "any",
    event: (r, a) => ({ type: "resource.coowner_added", resource: r.resource, account: a }) },
  "remove-coowner": { words: "remove a co-owner", kinds: coowned, account: "coowner",
    event: (r, a) => ({ type: "resource.coowner_removed", resource: r.resource, account: a }) },
  edit: { words: "an account edits it", kinds: ownedKinds, account: "candidate",
    event: (r, a) => ({ type: "resource.activity", resource: r.resource, account: a, action: "edit" }) },
  work: { words: "an account works on it", kinds: ["ci_instance"], account: "any",
    event: (r, a) => ({ type: "resource.activity", resource: r.resource, account: a, action: "edit" }) },
  link: { words: "link an account to a partner ID", kinds: ownedKinds.concat(["ci_instance"]), account: "candidate", partner: true,
    event: (r, a, p) => ({ type: "pal.linked", account: a, partner: p }) },
  unlink: { words: "remove an account's link", kinds: ownedKinds.concat(["ci_instance"]), account: "linked",
    event: (r, a) => ({ type: "pal.removed", account: a }) },
  import: { words: "import it in a solution", kinds: ownedKinds, account: "any",
    event: (r, a) => ({ type: "solution.imported", environment: r.environment, account: a, resources: [{ resource: r.resource, kind: r.kind }] }) },
};

// field is a labelled input with the place its error shows.
function field(label, input, hint) {
  const id = input.id;
  const error = h("p", { class: "field-error", id: id + "-error" });
  input.setAttribute("aria-describedby", [hint ? id + "-hint" : "", id + "-error"].filter(Boolean).join(" "));
  return h("div", { class: "field", id: id + "-field" }, h("label", { for: id }, label), hint ? h("p", { class: "hint", id: id + "-hint" }, hint) : null, input, error);
}
function setError(input, words) {
  const error = document.getElementById(input.id + "-error");
  if (error) error.textContent = words || "";
  if (words) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
}

// whatIfPage builds one change from a form that offers, for the resource
// picked, only the changes that count for its kind and only accounts that
// fit the change, checks it, and shows one verdict: who would be credited,
// why, and how much MAU and MCV moves. Experts may write events by hand.
async function whatIfPage(me) {
  const next = new Date(new Date(me.now).getTime() + 86400e3).toISOString().slice(0, 19) + "Z";
  const [res, links] = await Promise.all([allRows("resources", { tenant: me.tenant }), allRows("links", { tenant: me.tenant })]);
  const resources = res.rows.filter((r) => !r.resource.startsWith("/")).map((r) => ({ ...r, kind: kindOfWords[r.kind] || r.kind }));
  if (resources.length === 0) return me.show(h("h1", { id: "title" }, "What if…"), h("p", {}, `Tenant ${me.tenant} has no resource to try a change on.`));
  const linkOf = Object.fromEntries(links.rows.map((l) => [l.account, l.partner]));
  let candidates = [], owner = "", coowners = [];
  const out = h("div", { id: "whatif-result", "aria-live": "polite" });
  const problems = h("div", { id: "whatif-problems", role: "alert" });
  const resource = h("select", { id: "wi-resource", required: true }, resources.map((r) => h("option", { value: r.resource },
    `${r.name && r.name !== r.resource ? `${r.name} (${r.resource})` : r.resource}: ${kindWords[r.kind] || r.kind}, credited to ${partnerText(r.partner, r.org_name)}`)));
  const action = h("select", { id: "wi-action", required: true });
  const account = h("input", { type: "text", id: "wi-account", list: "wi-accounts", autocomplete: "off", required: true });
  const accountList = h("datalist", { id: "wi-accounts" });
  const partner = h("input", { type: "text", id: "wi-partner", inputmode: "numeric", autocomplete: "off", pattern: "[0-9]{6,10}" });
  const partnerField = field("Partner ID", partner, "A location ID: 6 to 10 digits.");
  const accountHint = h("p", { class: "hint", id: "wi-account-hint" });
  const accountField = field("Account", account);
  accountField.insertBefore(accountHint, account);
  account.setAttribute("aria-describedby", "wi-account-hint wi-account-error");
  const picked = () => resources.find((r) => r.resource === resource.value);
  // The accounts a change may name, and what the hint says of them.
  const choices = (kind) => ({
    any: [[...new Set(candidates.map((c) => c.account).concat(Object.keys(linkOf)))], "Any account of the tenant."],
    candidate: [candidates.map((c) => c.account), `One of the accounts that could be credited: ${candidates.map((c) => c.account).join(", ") || "none"}.`],
    coowner: [coowners, `A co-owner: ${coowners.join(", ") || "none"}.`],
    linked: [candidates.filter((c) => c.partner).map((c) => c.account), "One of the accounts that could be credited and holds a link."],
  }[kind]);
  const offer = () => {
    const r = picked(), was = action.value;
    const ok = Object.entries(whatIfChanges).filter(([k, c]) => c.kinds.includes(r.kind) &&
      (c.account !== "coowner" || coowners.length > 0) && (c.account !== "linked" || candidates.some((x) => x.partner)) &&
      (c.account !== "candidate" || candidates.length > 0));
    fill(action, ok.map(([k, c]) => h("option", k === was ? { value: k, selected: true } : { value: k }, c.words)));
    shape();
  };
  const shape = () => {
    const c = whatIfChanges[action.value];
    if (!c) return;
    partnerField.hidden = !c.partner;
    partner.required = !!c.partner;
    const [list, hint] = choices(c.account);
    fill(accountList, list.map((a) => h("option", { value: a })));
    accountHint.textContent = hint;
    setError(account, ""); setError(partner, "");
    fill(problems);
  };
  const load = async () => {
    const r = picked();
    try {
      const x = await api(`/v1/explain?tenant=${encodeURIComponent(me.tenant)}&resource=${encodeURIComponent(r.resource)}`);
      candidates = x.candidates || [];
      owner = (candidates.find((c) => c.role === "owner") || {}).account || "";
      coowners = candidates.filter((c) => c.role === "coowner").map((c) => c.account).concat(x.not_attributable || []);
    } catch (err) {
      candidates = []; owner = ""; coowners = [];
      fill(problems, errorLine(err));
    }
    offer();
  };
  // check returns the change's event, or null after marking each field
  // that does not fit it.
  const check = () => {
    const r = picked(), c = whatIfChanges[action.value], a = account.value.trim(), p = partner.value.trim();
    let aErr = "", pErr = "";
    const [list] = choices(c.account);
    if (!a) aErr = "Name the account.";
    else if (c.account !== "any" && !list.includes(a)) aErr = `${a} is not ${c.account === "coowner" ? "a co-owner" : c.account === "linked" ? "a candidate that holds a link" : "one of the accounts that could be credited"} of ${r.name || r.resource}.`;
    else if (action.value === "owner" && a === owner) aErr = `${a} is already the owner.`;
    else if (action.value === "add-coowner" && (a === owner || coowners.includes(a))) aErr = `${a} is already ${a === owner ? "the owner" : "a co-owner"}.`;
    if (c.partner) {
      if (!/^[0-9]{6,10}$/.test(p)) pErr = "A partner ID is 6 to 10 digits.";
      else if (linkOf[a] === p) pErr = `${a} already links ${p}.`;
    }
    setError(account, aErr); setError(partner, pErr);
    const errs = [aErr, pErr].filter(Boolean);
    fill(problems, errs.length ? h("p", { class: "error" }, `The change cannot be tried: ${errs.join(" ")}`) : null);
    if (errs.length) { (aErr ? account : partner).focus(); return null; }
    const ev = c.event(r, a, p);
    return { type: ev.type, time: next, tenant: me.tenant, ...ev };
  };
  const run = async (body, about) => {
    fill(out, h("p", { class: "muted" }, "Working it out…"));
    try {
      const res = await api(`/v1/whatif?tenant=${encodeURIComponent(me.tenant)}`, { method: "POST", body });
      fill(out, verdictOf(res, about));
    } catch (err) { fill(out, errorLine(err)); }
  };
  const text = h("textarea", { id: "events", "aria-describedby": "events-hint" });
  me.show(h("h1", { id: "title" }, "What if…"),
    h("p", {}, `Pick a resource of ${me.tenant} and a change; see who the credit would go to, and what moves with it. Nothing is written to the service.`),
    h("form", { class: "whatif", id: "whatif-form", novalidate: true, onsubmit: (e) => {
      e.preventDefault();
      const ev = check();
      if (ev) run(JSON.stringify(ev), picked());
    } },
    field("Resource", resource), h("div", { class: "field" }, h("label", { for: "wi-action" }, "Change"), action),
    accountField, accountList, partnerField,
    h("button", { type: "submit", id: "run-whatif" }, "See what the credit would become")),
    problems, out,
    h("details", { class: "expert" }, h("summary", {}, "Write events by hand"),
      h("label", { for: "events" }, "The changes as events"),
      h("p", { class: "hint", id: "events-hint" }, `One JSON object a line, of tenant ${me.tenant}, after ${me.now.slice(0, 10)}.`),
      text, h("button", { type: "button", id: "run-events", onclick: () => {
        if (!text.value.trim()) { fill(out, h("p", { class: "error", role: "alert" }, "Write at least one event.")); return; }
        run(text.value, null);
      } }, "See what these events would do")));
  resource.addEventListener("change", load);
  action.addEventListener("change", shape);
  await load();
}

// verdictOf says what a what-if does: one verdict, for the resource the
// change was about (or the first the events name), with its reason and
// what moves; then any other resource whose credit would move.
function verdictOf(res, about) {
  const vs = res.verdicts || [];
  const main = vs.find((v) => about && v.resource === about.resource) || vs[0];
  const moves = (v) => v.profiles > 0 && !v.mau ? `${fmt(v.profiles)} profiles and MCV ${fmt(v.mcv)}` : `MAU ${fmt(v.mau)} and MCV ${fmt(v.mcv)}`;
  const named = (v) => (v.name && v.name !== v.resource ? v.name : v.resource);
  const others = vs.filter((v) => v !== main && v.changes);
  const refused = res.refused || [];
  return [
    refused.length ? h("div", { class: "error", role: "alert", id: "whatif-refused" },
      h("p", {}, refused.length > 1 ? "The service refuses these lines:" : about ? "The service refuses the change:" : "The service refuses a line:"),
      h("ul", {}, refused.map((f) => h("li", {}, `Line ${f.line}: ${capital(f.message)} (${f.code})`)))) : null,
    main ? h("div", { class: main.changes ? "verdict moves" : "verdict", id: "verdict-box" },
      h("p", { class: "headline", id: "verdict-headline" }, main.changes ?
        `${named(main)} would move from ${main.before} to ${main.after}.` :
        `${named(main)} would stay with ${main.after}: the credit would not change.`),
      main.words ? h("p", { id: "verdict-reason" }, main.words) : null,
      h("p", { id: "verdict-moves" }, main.changes ?
        `${moves(main)} a month move with it: what ${named(main)} carried in ${monthName(main.month)}.` :
        "No MAU or MCV moves.")) :
      (refused.length ? null : h("p", { id: "verdict-headline" }, "The events name no resource and move no credit.")),
    others.length ? [h("h2", {}, "The credit of other resources would move too"),
      table(["Resource", "Now", "Would be", "MAU", "MCV"], others.map((v) => [named(v), v.before, v.after, fmt(v.mau), fmt(v.mcv)]), { id: "whatif-others" }, "other resources")] : null,
  ];
}

const partnersPath = "/providers/Microsoft.ManagementPartner/partners";

// linkPage is an account's own link: the three flows of the FAQ (link a
// partner ID, change it, remove it, which asks first), what the link
// carries today, and where another partner outranks it.
async function linkPage(me) {
  let link = null;
  try { link = await api(partnersPath); } catch (err) { link = null; }
  const credit = await api("/v1/me/credit");
  const result = h("div", { id: "link-result", "aria-live": "polite" });
  const input = h("input", { type: "text", id: "partner-id", inputmode: "numeric", autocomplete: "off", required: true });
  const say = (node) => fill(document.getElementById("link-result") || result, node);
  const send = async (method, id, done) => {
    try {
      await api(`${partnersPath}/${encodeURIComponent(id)}`, { method });
      location.hash = "#/link"; await route();
      say(h("p", { class: "gain", id: "link-done" }, done));
    } catch (err) { say(errorLine(err, "link-error")); }
  };
  // A partner ID is checked here before it is sent.
  const checked = (done, method) => (e) => {
    e.preventDefault();
    const id = input.value.trim();
    if (!/^[0-9]{6,10}$/.test(id)) {
      setError(input, "A partner ID is 6 to 10 digits: the location ID your partner organisation gave you.");
      say(h("p", { class: "error", id: "link-error", role: "alert" }, "The partner ID is not one: write 6 to 10 digits (invalid_partner_id)"));
      input.focus();
      return;
    }
    setError(input, "");
    send(method, id, done);
  };
  const status = link ? h("p", { id: "link-status" }, `Your account ${me.account} in tenant ${me.tenant} is linked to partner ID ${link.properties.partnerId}` +
      `${link.properties.partnerName ? ` (${link.properties.partnerName})` : ""}, since ${link.properties.updatedTime.slice(0, 10)}.`) :
    h("p", { id: "link-status" }, `Your account ${me.account} in tenant ${me.tenant} holds no partner link: the work it does credits no partner.`);
  const carried = credit.resources.length;
  const dialog = link ? h("dialog", { id: "confirm-remove", "aria-labelledby": "confirm-remove-title" },
    h("h2", { id: "confirm-remove-title" }, `Remove your link to partner ID ${link.properties.partnerId}?`),
    h("p", {}, `Your work stops counting for ${partnerText(link.properties.partnerId, link.properties.partnerName)} from now on` +
      (carried ? `: the credit of ${plural(carried, ["resource", "resources"])} your link carries today may go to another partner, or to no one.` : ".")),
    h("div", { class: "actions" },
      h("button", { type: "button", id: "confirm-remove-yes", class: "danger", onclick: () => { dialog.close(); send("DELETE", link.properties.partnerId, "Your link is removed."); } }, "Remove the link"),
      h("button", { type: "button", id: "confirm-remove-no", class: "secondary", autofocus: true, onclick: () => dialog.close() }, "Keep the link"))) : null;
  const forms = link ? [
    h("h2", {}, "Change your link"),
    h("form", { class: "login", id: "change-form", novalidate: true, onsubmit: checked("Your link is changed.", "PATCH") },
      field("Partner ID", input, "Link another of your organisation's location IDs (not its global ID): 6 to 10 digits."),
      h("button", { type: "submit", id: "link-change" }, "Change the link")),
    h("h2", {}, "Remove your link"),
    h("div", { class: "login" },
      h("p", {}, "Your work stops counting for the partner from now on. You are asked before anything changes."),
      h("button", { type: "button", id: "link-remove", class: "danger", onclick: () => dialog.showModal() }, "Remove the link…"), dialog)] : [
    h("h2", {}, "Link a partner ID"),
    h("form", { class: "login", id: "create-form", novalidate: true, onsubmit: checked("Your account is linked.", "PUT") },
      field("Partner ID", input, "The location ID your partner organisation gave you (not its global ID): 6 to 10 digits."),
      h("button", { type: "submit", id: "link-create" }, "Link"))];
  const lost = credit.outranked || [];
  me.show(h("h1", { id: "title" }, "Your partner link"), status, result, forms,
    h("h2", {}, "Resources your link carries credit on today"),
    carried === 0 ? h("p", { class: "muted", id: "my-credit" }, "None today.") :
      table(["Resource", "Kind", "Environment", "Partner ID", "Since"],
        credit.resources.map((r) => [r.resource, kindWords[r.kind] || r.kind, r.environment, r.partner, (r.since || "").slice(0, 10)]), { id: "my-credit" }, "the resources your link carries"),
    h("h2", {}, "Where another partner outranks your link"),
    lost.length === 0 ? h("p", { class: "muted", id: "outranked" }, link ? "Nowhere today: no other partner is credited where your account could be." : "Link a partner ID first: without a link your account is never credited.") :
      table(["Resource", "Kind", "Your role", "Credited to", "Since", "Why"],
        lost.map((o) => [o.name && o.name !== o.resource ? `${o.name} (${o.resource})` : o.resource, o.kind, o.role, partnerText(o.partner, o.org_name), o.since.slice(0, 10), o.words]),
        { id: "outranked" }, "where another partner outranks your link"));
}

// generation counts the pages asked for: a page that finishes after
// another was asked for shows nothing.
let generation = 0;

async function route() {
  if (!token()) return loginPage();
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const gen = ++generation;
  const current = () => gen === generation;
  try {
    const me = await api("/v1/me");
    me.show = (...children) => { if (current()) show(...children); };
    me.fail = (err) => { if (current()) fail(err); };
    document.getElementById("who").textContent = `${me.role}${me.tenant ? " of " + me.tenant : ""}${me.org ? " of " + (me.org_name ? `${me.org_name} (${me.org})` : me.org) : ""}`;
    const nav = document.getElementById("nav");
    nav.replaceChildren(...({ "partner-reader": [["#/partner", "Dashboard"]], "tenant-admin": [["#/tenant", "Tenant"], ["#/whatif", "What if"]],
      operator: [["#/programme", "Programme"], ["#/tenant", "Resources"]], account: [["#/link", "Your link"]] }[me.role] || [])
      .map(([href, label]) => h("a", { href, "aria-current": href.slice(2) === parts[0] ? "page" : null }, label)));
    document.getElementById("logout").hidden = false;
    switch (parts[0]) {
      case "login": return loginPage();
      case "partner": return me.role === "operator" ? await partnerPage(me, parts[1], parts[2]) : await partnerPage(me, me.org, parts[2] || (/^\d{4}-\d{2}$/.test(parts[1] || "") ? parts[1] : ""));
      case "programme": return await programmePage(me, parts[1]);
      case "resource": return await resourcePage(me, parts[1], parts[2], parts[3]);
      case "tenant": return await tenantPage(me, parts[1]);
      case "whatif": return await whatIfPage(me);
      case "link": return await linkPage(me);
      default: return await homePage(me);
    }
  } catch (err) { if (current()) fail(err); }
}

document.getElementById("logout").addEventListener("click", () => { localStorage.removeItem("pal.token"); location.hash = "#/login"; route(); });
window.addEventListener("hashchange", route);
route();
