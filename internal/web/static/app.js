// pal's pages: they read the API with the token the user logged in with.
// Everything shown is what the API returns for that token; nothing is
// filtered here. A page shows one month: every section of it is as of that
// month's end, or now for the present's month, and says so. Tables are
// read from /v1/tables whole: the server pages, sorts and filters them,
// and says how many rows there are; a download saves every row.
"use strict";

const main = document.getElementById("main");
const maxPoints = { net_customer_adds: 15, intermediate: 20, advanced: 15, usage_growth: 30, deployments: 20 };
const pointNames = { net_customer_adds: "Net customer adds", intermediate: "Intermediate certifications",
  advanced: "Advanced certifications", usage_growth: "Usage growth", deployments: "Deployments" };
const kindWords = { canvas_app: "canvas app", model_driven_app: "model-driven app", flow: "flow", powerbi_dataset: "Power BI dataset",
  bot: "Copilot Studio bot", pages_site: "Power Pages site", ci_instance: "Customer Insights instance", azure_resource: "Azure resource" };
const roleWords = { owner: "owner", coowner: "co-owner", contributor: "contributor" };

// h builds an element; strings become text, never HTML.
function h(tag, attrs, ...children) {
  const ns = ["svg", "rect", "text", "line", "g", "title"].includes(tag) ? "http://www.w3.org/2000/svg" : null;
  const el = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "style") el.style.cssText = v; // through the CSSOM, which the page's policy allows
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function token() { return localStorage.getItem("pal.token"); }

async function request(path, opts = {}) {
  const res = await fetch(path, { ...opts, headers: { ...(opts.headers || {}), Authorization: "Bearer " + token() } });
  if (res.status === 401) { localStorage.removeItem("pal.token"); location.hash = "#/login"; throw new Error("log in again"); }
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    const e = body.error || {};
    throw new Error(e.message ? `${e.message} (${e.code})` : res.statusText);
  }
  return res;
}
async function api(path, opts = {}) { return (await request(path, opts)).json(); }

// fill replaces an element's children, leaving out the absent ones.
function fill(el, ...children) { el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false)); }
function show(...children) { fill(main, ...children); }
function fail(err) { show(h("p", { class: "error", id: "error", role: "alert" }, String(err.message || err))); }

// Words and numbers.
const fmt = (n) => Number(n || 0).toLocaleString("en", { maximumFractionDigits: 2 });
const amount = (n, currency) => `${currency} ${Number(n || 0).toLocaleString("en", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
function plural(n, noun) { return `${fmt(n)} ${n === 1 ? noun[0] : noun[1]}`; }
function when(t) { return t ? t.slice(0, 16).replace("T", " ") + " UTC" : ""; }
function monthName(m) { return new Date(`${m}-01T00:00:00Z`).toLocaleString("en", { month: "long", year: "numeric", timeZone: "UTC" }); }
// asOf says which instant a section shows.
function asOf(t) { return t.current ? `as of now, ${when(t.at)} (the latest event)` : `as of the end of ${monthName(t.month)}, ${when(t.at)}`; }
function partnerText(id, name) { return id ? (name ? `${id} (${name})` : id) : "no one"; }

const palette = ["#2457c5", "#b4541b", "#1b7a50", "#8a3fb5", "#8f6a00", "#b3264f", "#1f7a94", "#5d6b1f"];
// colours gives each partner of a page its own colour; grey is no one.
function colours(partners) {
  const seen = [...new Set(partners.filter(Boolean))];
  return (p) => (p ? palette[seen.indexOf(p) % palette.length] : "#c9d1db");
}
function resourceHref(tenant, resource, at) {
  return `#/resource/${encodeURIComponent(tenant)}/${encodeURIComponent(resource)}${at ? "/" + encodeURIComponent(at) : ""}`;
}
function table(head, rows, attrs = {}) {
  return h("div", { class: "scroll" }, h("table", attrs, h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))),
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
// hears each answer.
function tableView(id, name, params, opts = {}) {
  const st = { offset: 0, limit: opts.limit || 25, sort: "", order: "", q: "" };
  const box = h("div", { class: "table-view", id: id + "-view", "aria-live": "polite" }, h("p", { class: "muted" }, "Loading…"));
  let timer = null;
  const query = (extra) => new URLSearchParams(Object.entries({ ...params, ...(st.sort ? { sort: st.sort, order: st.order } : {}),
    ...(st.q ? { q: st.q } : {}), ...extra }).filter(([, v]) => v !== "" && v !== undefined && v !== null)).toString();
  const filter = h("input", { type: "search", id: id + "-filter", placeholder: "Filter rows", "aria-label": `Filter the rows of ${opts.title || name}`,
    oninput: () => { clearTimeout(timer); timer = setTimeout(() => { st.q = filter.value.trim(); st.offset = 0; load(); }, 250); } });
  const load = async () => {
    let t;
    try { t = await api(`/v1/tables/${name}?${query({ offset: st.offset, limit: st.limit })}`); } catch (err) {
      fill(box, h("p", { class: "error", role: "alert" }, err.message)); return;
    }
    if (opts.loaded) opts.loaded(t);
    st.sort = t.sort; st.order = t.order;
    const cols = t.columns.filter((c) => !(opts.hide || []).includes(c.key));
    const head = cols.map((c) => h("button", { type: "button", class: "sort", "aria-label": `Sort by ${c.label}`,
      onclick: () => { st.order = st.sort === c.key && st.order === "asc" ? "desc" : "asc"; st.sort = c.key; st.offset = 0; load(); } },
    c.label, st.sort === c.key ? (st.order === "desc" ? " ▼" : " ▲") : ""));
    const total = h("p", { class: "total", id: id + "-total" }, `${plural(t.total, t.noun)}${t.q ? ` match “${t.q}” (of ${fmt(t.all)})` : ""}, ${asOf(t)}.`);
    const download = h("button", { type: "button", class: "secondary", id: "download-" + id, onclick: async () => {
      try {
        const res = await request(`/v1/tables/${name}?${query({ format: "csv" })}`);
        save(`${name}-${t.month}.csv`, await res.blob());
      } catch (err) { fill(box, h("p", { class: "error", role: "alert" }, err.message)); }
    } }, `Download ${t.total === 1 ? "the row" : `all ${fmt(t.total)} rows`} as CSV`);
    if (t.all === 0) {
      fill(box, h("p", { class: "muted", id }, opts.empty || `No ${t.noun[1]} ${asOf(t)}.`));
      return;
    }
    const from = t.total ? t.offset + 1 : 0, to = t.offset + t.rows.length;
    const pager = h("div", { class: "pager" },
      h("button", { type: "button", class: "secondary", id: id + "-previous", disabled: t.offset === 0 ? true : null,
        onclick: () => { st.offset = Math.max(0, st.offset - st.limit); load(); } }, "Previous"),
      h("span", { id: id + "-rows" }, `Rows ${fmt(from)}–${fmt(to)} of ${fmt(t.total)}`),
      h("button", { type: "button", class: "secondary", id: id + "-next", disabled: to >= t.total ? true : null,
        onclick: () => { st.offset += st.limit; load(); } }, "Next"));
    fill(box, total, h("div", { class: "tools" }, filter, download),
      table(head, t.rows.map((r) => cols.map((c) => cellOf(c, r, t, opts.cells))), { id }),
      t.total > t.rows.length || t.offset > 0 ? pager : null);
  };
  load();
  return box;
}

// The month a page shows: every month of the log, the latest with data
// by default (not the wall clock's).
async function monthsOf(params) {
  const t = await api(`/v1/tables/months?${new URLSearchParams({ ...params, limit: 1000 })}`);
  return t;
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

// Pages.

function loginPage() {
  const input = h("input", { type: "password", id: "token", placeholder: "pal_…", autocomplete: "off" });
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
  const chartMonths = months.rows.filter((r) => r.month <= month).slice(0, 6).reverse();
  const points = h("div", { class: "points", id: "score" }, Object.keys(maxPoints).map((k) => [
    h("span", {}, pointNames[k]),
    h("span", { class: "meter", role: "meter", "aria-valuenow": score.points[k], "aria-valuemin": 0, "aria-valuemax": maxPoints[k], "aria-label": pointNames[k] },
      h("span", { style: `width:${(100 * score.points[k]) / maxPoints[k]}%` })),
    h("span", {}, `${score.points[k]} / ${maxPoints[k]}`)]));
  me.show(
    h("h1", { id: "title" }, `${name}: credit in ${month}`),
    h("div", { class: "frame" }, monthPicker(months, month, go),
      h("p", { id: "frame" }, `Every section shows ${monthName(month)} ${asOf(frame)}.`)),
    frame.data ? null : h("p", { class: "notice", id: "empty-month" }, `No usage, profiles or Azure consumption is credited to ${name} in ${monthName(month)}: the month is empty.`),
    h("div", { class: "cards" },
      card("Customers", fmt(frame.customers), "customers"), card("Credited resources", fmt(credited.all), "resources"),
      card("MCV", fmt(frame.mcv), "mcv"), card("Deployments", fmt(frame.deployments), "deployments"),
      card("Capability score", `${score.total} / 100`, "total")),
    h("h2", {}, "MAU and MCV by month"), monthlyChart(chartMonths),
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

function monthlyChart(rows) {
  const months = rows.map((r) => r.month), mau = rows.map((r) => r.mau), mcv = rows.map((r) => r.mcv);
  const W = 640, H = 180, top = 20, maxMAU = Math.max(1, ...mau), maxMCV = Math.max(1, ...mcv), step = W / Math.max(1, months.length);
  const bar = (i, half, v, max, cls, label) => {
    const height = (H * v) / max, x = i * step + 8 + half * (step / 2 - 2);
    return [h("rect", { class: cls, x, y: top + H - height, width: step / 2 - 10, height }, h("title", {}, `${months[i]}: ${label}`)),
      h("text", { class: "value", x, y: top + H - height - 4 }, fmt(v))];
  };
  return h("div", { class: "scroll" }, h("svg", { width: W, height: H + top + 50, id: "chart", role: "img", "aria-label": `MAU and MCV from ${months[0]} to ${months[months.length - 1]}` },
    months.map((m, i) => h("g", {},
      bar(i, 0, mau[i], maxMAU, "bar", `${fmt(mau[i])} MAU`), bar(i, 1, mcv[i], maxMCV, "bar mcv", `MCV ${fmt(mcv[i])}`),
      h("text", { x: i * step + 8, y: top + H + 18 }, m))),
    h("g", { id: "legend" },
      h("rect", { class: "bar", x: 8, y: top + H + 30, width: 12, height: 12 }), h("text", { x: 26, y: top + H + 41 }, "MAU (monthly active users)"),
      h("rect", { class: "bar mcv", x: 240, y: top + H + 30, width: 12, height: 12 }), h("text", { x: 258, y: top + H + 41 }, "MCV (monthly consumption value)"))));
}

// programmePage is the operator's view of the programme: every
// organisation in a month beside the month before, its score and whether
// it qualifies, any partner's dashboard a click away, and what comes in.
async function programmePage(me, monthParam) {
  const months = await monthsOf({});
  if (months.rows.length === 0) return me.show(h("h1", { id: "title" }, "The programme"), h("p", {}, "The log is empty: no month to show."));
  const month = pickMonth(months, monthParam);
  const frame = months.rows.find((r) => r.month === month);
  const intake = await api("/v1/intake");
  const held = Object.entries(intake.held_by_code).sort();
  const own = {
    org_name: (r) => [r.org_name ? `${r.org_name} (${r.org})` : r.org, " ", h("a", { href: `#/partner/${r.org}/${month}`, class: "dashboard-link" }, "dashboard")],
    score: (r) => `${r.score} / 100`,
  };
  me.show(h("h1", { id: "title" }, "The programme"),
    h("div", { class: "frame" }, monthPicker(months, month, (m) => { location.hash = `#/programme/${m}`; }),
      h("p", { id: "frame" }, `${monthName(month)} ${asOf(frame)}.`)),
    section(`Organisations in ${month}`, "MCV and ACR beside the month before: sort by a change to see who fell most.",
      tableView("programme", "organisations", { month }, { title: "organisations", hide: ["org"], cells: own })),
    h("h2", {}, "What comes in"),
    table(["Day", "Events"], intake.days.filter((d) => d.events > 0).map((d) => [d.day, fmt(d.events)]), { id: "intake" }),
    h("p", { id: "held" }, intake.held === 0 ? "No event is held." :
      `${plural(intake.held, ["event", "events"])} held (stored, refused by the state as it stands): ${held.map(([c, n]) => `${c} ${n}`).join(", ")}.`));
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
  const start = new Date(ivs[0].from).getTime(), end = Math.max(new Date(me.now).getTime(), start + 86400e3);
  const W = 900, x = (t) => ((t - start) / (end - start)) * W;
  const colour = colours(ivs.map((iv) => iv.partner));
  const lanes = [["Credited partner", 0], ["Environment", 1], ["Owner and co-owners", 2]];
  const explanation = h("div", { id: "explanation", "aria-live": "polite" }, h("p", { class: "muted" }, "Click the timeline, or pick an interval below, to see why at that instant."));
  const svg = h("svg", { width: W + 150, height: 150, id: "timeline", role: "img", "aria-label": `Credit of ${resource} over time`, onclick: async (e) => {
    const box = svg.getBoundingClientRect();
    const px = Math.min(W, Math.max(0, e.clientX - box.left - 150));
    const t = new Date(start + (px / W) * (end - start)).toISOString().slice(0, 19) + "Z";
    explain(explanation, tenant, resource, t);
  } },
  lanes.map(([name, i]) => h("text", { x: 0, y: 32 + i * 36 }, name)),
  h("g", { transform: "translate(150,0)" },
    ivs.map((iv, i) => {
      const from = new Date(iv.from).getTime(), to = iv.to ? new Date(iv.to).getTime() : end;
      const w = Math.max(1, x(to) - x(from)), st = states[i];
      const label = iv.partner ? `${partnerText(iv.partner, names[iv.org])}, ${iv.account}` : iv.reason;
      return h("g", { class: "band" },
        h("rect", { x: x(from), y: 12, width: w, height: 30, fill: colour(iv.partner) },
          h("title", {}, `${iv.from.slice(0, 10)} – ${iv.to ? iv.to.slice(0, 10) : "now"}: ${label}`)),
        h("text", { x: x(from) + 4, y: 32, class: "on-band" }, w > 60 ? (iv.partner || "—") : ""),
        h("rect", { x: x(from), y: 48, width: w, height: 30, fill: st.hidden ? "#e6ebf2" : st.counted ? "#cfe3d6" : "#f1d9c9" },
          h("title", {}, `${st.environment}: ${st.env_type}`)),
        h("text", { x: x(from) + 4, y: 68 }, w > 60 && !st.hidden ? st.env_type : ""),
        h("rect", { x: x(from), y: 84, width: w, height: 30, fill: "#e6ebf2", stroke: "#fff" }, h("title", {}, accounts(st))),
        h("text", { x: x(from) + 4, y: 104 }, w > 60 && !st.hidden ? plural((st.candidates || []).length, ["account", "accounts"]) : ""));
    }),
    h("text", { x: 0, y: 136 }, ivs[0].from.slice(0, 10)), h("text", { x: W - 70, y: 136 }, me.now.slice(0, 10))));
  const name = states.find((s) => s.name)?.name;
  me.show(h("h1", { id: "title" }, `${name ? name + " — " : ""}${resource} in ${tenant}`),
    h("p", { class: "muted" }, "Over time: who is credited (grey: no one), the environment's type, and the accounts that could be credited. Hover for details."),
    h("div", { class: "scroll" }, svg),
    table(["From", "To", "Partner", "Account", "Environment", "Owner and co-owners", ""],
      ivs.map((iv, i) => [iv.from.slice(0, 10), iv.to ? iv.to.slice(0, 10) : "now", partnerText(iv.partner, names[iv.org]), iv.account || "—",
        states[i].env_type, accounts(states[i]),
        h("button", { type: "button", class: "secondary why", onclick: () => explain(explanation, tenant, resource, states[i].at || iv.from) }, "Why")]), { id: "intervals" }),
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
          c.eligible ? "yes" : `no: ${c.reason.replaceAll("_", " ")}`])));
  } catch (err) {
    fill(into, h("p", { class: "error", role: "alert" }, err.message));
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
  const start = Math.min(...ivs.map((iv) => new Date(iv.from).getTime()));
  const end = Math.max(new Date(me.now).getTime(), start + 86400e3, ...ivs.map((iv) => iv.to ? new Date(iv.to).getTime() : 0));
  const W = 900, x = (t) => ((t - start) / (end - start)) * W, colour = colours(partners);
  const explanation = h("div", { id: "explanation", "aria-live": "polite" }, h("p", { class: "muted" }, "Click the timeline to see every assignment at that instant."));
  const svg = h("svg", { width: W + 150, height: 40 + 36 * partners.length, id: "timeline", role: "img", "aria-label": `Recognition of ${resource} over time`, onclick: (e) => {
    const box = svg.getBoundingClientRect();
    const px = Math.min(W, Math.max(0, e.clientX - box.left - 150));
    explainAzure(explanation, tenant, resource, new Date(start + (px / W) * (end - start)).toISOString().slice(0, 19) + "Z");
  } },
  partners.map((p, i) => h("text", { x: 0, y: 32 + i * 36 }, p)),
  h("g", { transform: "translate(150,0)" },
    ivs.map((iv) => {
      const i = partners.indexOf(iv.partner), from = new Date(iv.from).getTime(), to = iv.to ? new Date(iv.to).getTime() : end;
      const w = Math.max(1, x(to) - x(from));
      return h("g", { class: "band" },
        h("rect", { x: x(from), y: 12 + i * 36, width: w, height: 30, fill: colour(iv.partner), "fill-opacity": String(0.4 + 0.6 * iv.share) },
          h("title", {}, `${iv.from.slice(0, 16)} – ${iv.to ? iv.to.slice(0, 16) : "now"}: ${iv.partner}, share ${iv.share}`)));
    }),
    h("text", { x: 0, y: 30 + 36 * partners.length }, new Date(start).toISOString().slice(0, 10)),
    h("text", { x: W - 70, y: 30 + 36 * partners.length }, me.now.slice(0, 10))));
  const names = Object.assign({}, ...states.map((s) => s.org_names || {}));
  me.show(h("h1", { id: "title" }, `${resource.slice(resource.lastIndexOf("/") + 1)} in ${tenant}`),
    h("p", { class: "muted id" }, resource),
    h("p", { class: "muted" }, "Azure recognition follows role and scope: a lane per partner credited, lighter when it holds a share. Hover for details."),
    h("div", { class: "scroll" }, svg),
    table(["From", "To", "Partner", "Organisation", "Share", "Assignments behind it"],
      ivs.map((iv, i) => [iv.from.slice(0, 16).replace("T", " "), iv.to ? iv.to.slice(0, 16).replace("T", " ") : "now", iv.partner, names[iv.org] ? `${names[iv.org]} (${iv.org})` : iv.org,
        String(Math.round(iv.share * 1000) / 1000), behind(states[i], iv.partner)]), { id: "intervals" }),
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
            c.account, c.partner ? partnerText(c.partner, (x.org_names || {})[c.org]) : "no link", c.eligible ? "yes" : `no: ${c.words || c.reason}`]))));
  } catch (err) {
    fill(into, h("p", { class: "error", role: "alert" }, err.message));
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
  me.show(h("h1", { id: "title" }, me.tenant ? `Tenant ${me.tenant}` : "All tenants"),
    h("div", { class: "frame" }, monthPicker(months, month, (m) => { location.hash = `#/tenant/${m}`; }),
      h("p", { id: "frame" }, `Every section shows ${monthName(month)} ${asOf(frame)}.`)),
    section("Resources and who is credited", null,
      tableView("resources", "resources", params, { title: "resources", hide: ["name", "org_name", "mau", "profiles", "mcv", "acr"] })),
    me.tenant ? section("Accounts that hold a partner link", null,
      tableView("links", "links", params, { title: "links", hide: ["org_name"], empty: "No account of the tenant holds a partner link." })) : null,
    section("Who took the credit", `Every change of the partner credited for a resource${me.tenant ? " of this tenant" : ""} in ${monthName(month)}. A partner that gains the credit by a role alone — made co-owner or owner, with no edit or publish in the 90 days before — is marked.`,
      tableView("credit-changes", "changes", params, { title: "credit changes", hide: ["change", "name"], empty: `No credit changed hands in ${monthName(month)}.` })),
    me.tenant ? h("p", {}, h("a", { href: "#/whatif", id: "whatif-link" }, "What if…")) : null);
}

// allAttribution reads every page of the attribution the caller may see.
async function allAttribution() {
  let out = [], after = "";
  for (;;) {
    const page = await api(`/v1/attribution?limit=10000${after ? "&after=" + after : ""}`);
    out = out.concat(page.resources);
    if (!page.next) return out;
    after = page.next;
  }
}

// whatIfActions are the changes the what-if form builds, as events.
const whatIfActions = {
  "add a co-owner": (r, account) => ({ type: "resource.coowner_added", resource: r.resource, account }),
  "remove a co-owner": (r, account) => ({ type: "resource.coowner_removed", resource: r.resource, account }),
  "change the owner": (r, account) => ({ type: "resource.owner_changed", resource: r.resource, owner: account }),
  "link an account": (r, account, partner) => ({ type: "pal.linked", account, partner }),
  "unlink an account": (r, account) => ({ type: "pal.removed", account }),
  "import a solution": (r, account) => ({ type: "solution.imported", environment: r.environment, account,
    resources: [{ resource: r.resource, kind: r.kind }] }),
};

async function whatIfPage(me) {
  const next = new Date(new Date(me.now).getTime() + 86400e3).toISOString().slice(0, 19) + "Z";
  const [attr, links] = await Promise.all([allAttribution(), api(`/v1/links?tenant=${me.tenant}`)]);
  const resources = attr.filter((r) => r.kind !== "azure_resource");
  const text = h("textarea", { id: "events", "aria-label": "The changes as events" });
  const out = h("div", { id: "whatif-result", "aria-live": "polite" });
  const resource = h("select", { id: "wi-resource" }, resources.map((r) => h("option", { value: r.resource }, `${r.resource} (${kindWords[r.kind] || r.kind}, credited to ${r.partner || "no one"})`)));
  const action = h("select", { id: "wi-action" }, Object.keys(whatIfActions).map((a) => h("option", { value: a }, a)));
  const accounts = h("datalist", { id: "wi-accounts" }, [...new Set(resources.map((r) => r.account).concat(links.links.map((l) => l.account)))]
    .filter(Boolean).map((a) => h("option", { value: a })));
  const account = h("input", { type: "text", id: "wi-account", list: "wi-accounts", placeholder: "an account of the tenant" });
  const partner = h("input", { type: "text", id: "wi-partner", placeholder: "partner ID, to link an account" });
  const add = () => {
    const r = resources.find((x) => x.resource === resource.value) || {};
    const ev = { time: next, tenant: me.tenant, ...whatIfActions[action.value](r, account.value.trim(), partner.value.trim()) };
    const line = JSON.stringify({ type: ev.type, time: ev.time, tenant: ev.tenant, ...ev });
    text.value = (text.value.trim() ? text.value.trim() + "\n" : "") + line;
  };
  me.show(h("h1", { id: "title" }, "What if…"),
    h("p", {}, "Build the changes you have in mind, then see who the credit would go to. Nothing is written to the service."),
    h("form", { class: "whatif", id: "whatif-form", onsubmit: (e) => { e.preventDefault(); add(); } },
      h("label", {}, "Resource ", resource), h("label", {}, "Change ", action), h("label", {}, "Account ", account, accounts),
      h("label", {}, "Partner ID ", partner), h("button", { type: "submit", id: "wi-add" }, "Add the change")),
    h("p", { class: "muted" }, `The changes as events (one JSON object a line, after ${me.now.slice(0, 10)}); experts may write them by hand:`),
    text, h("button", { id: "run-whatif", onclick: async () => {
      try {
        const res = await api(`/v1/whatif?tenant=${me.tenant}`, { method: "POST", body: text.value });
        const before = Object.fromEntries(res.before.map((r) => [r.resource, r]));
        const changed = res.after.filter((r) => !before[r.resource] || before[r.resource].partner !== r.partner);
        fill(out,
          changed.length === 0 ? h("p", { id: "no-change" }, "The credit would not change.") :
            table(["Resource", "Now", "Would be"], changed.map((r) => [r.resource, (before[r.resource] || {}).partner || "no one", r.partner || `no one (${r.reason.replaceAll("_", " ")})`])),
          res.refused.length ? h("p", { class: "error", role: "alert" }, res.refused.map((f) => `line ${f.line}: ${f.message} (${f.code})`).join("; ")) : null);
      } catch (err) { fill(out, h("p", { class: "error", role: "alert" }, err.message)); }
    } }, "See what the credit would become"), out);
}

const partnersPath = "/providers/Microsoft.ManagementPartner/partners";

// linkPage is an account's own link: the three flows of the FAQ (link a
// partner ID, change it, remove it) and what the link carries today.
async function linkPage(me) {
  let link = null;
  try { link = await api(partnersPath); } catch (err) { link = null; }
  const credit = await api("/v1/me/credit");
  const result = h("div", { id: "link-result", "aria-live": "polite" });
  const input = h("input", { type: "text", id: "partner-id", placeholder: "a location ID: 6 to 10 digits", autocomplete: "off", "aria-label": "Partner ID" });
  const act = (method, id, done) => async (e) => {
    e.preventDefault();
    try {
      await api(`${partnersPath}/${encodeURIComponent(id())}`, { method });
      location.hash = "#/link"; await route();
      fill(document.getElementById("link-result"), h("p", { class: "gain", id: "link-done" }, done));
    } catch (err) { fill(result, h("p", { class: "error", id: "link-error", role: "alert" }, err.message)); }
  };
  const status = link ? h("p", { id: "link-status" }, `Your account ${me.account} in tenant ${me.tenant} is linked to partner ID ${link.properties.partnerId}` +
      `${link.properties.partnerName ? ` (${link.properties.partnerName})` : ""}, since ${link.properties.updatedTime.slice(0, 10)}.`) :
    h("p", { id: "link-status" }, `Your account ${me.account} in tenant ${me.tenant} holds no partner link: the work it does credits no partner.`);
  const forms = link ? [
    h("h2", {}, "Change your link"),
    h("form", { class: "login", id: "change-form", onsubmit: act("PATCH", () => input.value.trim(), "Your link is changed.") },
      h("p", {}, "Link another of your organisation's location IDs (not its global ID)."), input, h("button", { type: "submit", id: "link-change" }, "Change the link")),
    h("h2", {}, "Remove your link"),
    h("form", { class: "login", onsubmit: act("DELETE", () => link.properties.partnerId, "Your link is removed.") },
      h("p", {}, "Your work stops counting for the partner from now on."), h("button", { type: "submit", id: "link-remove" }, "Remove the link"))] : [
    h("h2", {}, "Link a partner ID"),
    h("form", { class: "login", id: "create-form", onsubmit: act("PUT", () => input.value.trim(), "Your account is linked.") },
      h("p", {}, "Enter the location ID your partner organisation gave you (not its global ID)."), input, h("button", { type: "submit", id: "link-create" }, "Link"))];
  me.show(h("h1", { id: "title" }, "Your partner link"), status, result, forms,
    h("h2", {}, "Resources your link carries credit on today"),
    credit.resources.length === 0 ? h("p", { class: "muted", id: "my-credit" }, "None today.") :
      table(["Resource", "Kind", "Environment", "Partner ID", "Since"],
        credit.resources.map((r) => [r.resource, kindWords[r.kind] || r.kind, r.environment, r.partner, (r.since || "").slice(0, 10)]), { id: "my-credit" }));
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
      operator: [["#/programme", "Programme"], ["#/tenant", "Resources"]] }[me.role] || []).map(([href, label]) => h("a", { href }, label)));
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
