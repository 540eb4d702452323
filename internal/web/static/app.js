// pal's pages: they read the API with the token the user logged in with.
// Everything shown is what the API returns for that token; nothing is
// filtered here.
"use strict";

const main = document.getElementById("main");
const maxPoints = { net_customer_adds: 15, intermediate: 20, advanced: 15, usage_growth: 30, deployments: 20 };
const pointNames = { net_customer_adds: "Net customer adds", intermediate: "Intermediate certifications",
  advanced: "Advanced certifications", usage_growth: "Usage growth", deployments: "Deployments" };

// h builds an element; strings become text, never HTML.
function h(tag, attrs, ...children) {
  const ns = ["svg", "rect", "text", "line", "g", "title"].includes(tag) ? "http://www.w3.org/2000/svg" : null;
  const el = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "style") el.style.cssText = v; // through the CSSOM, which the page's policy allows
    else el.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) {
    if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function token() { return localStorage.getItem("pal.token"); }

async function api(path, opts = {}) {
  const res = await fetch(path, { ...opts, headers: { ...(opts.headers || {}), Authorization: "Bearer " + token() } });
  const body = await res.json().catch(() => ({}));
  if (res.status === 401) { localStorage.removeItem("pal.token"); location.hash = "#/login"; throw new Error("log in again"); }
  if (!res.ok) throw new Error((body.error && body.error.message) || res.statusText);
  return body;
}

// fill replaces an element's children, leaving out the absent ones.
function fill(el, ...children) { el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined)); }
function show(...children) { fill(main, ...children); }
function fail(err) { show(h("p", { class: "error", id: "error" }, String(err.message || err))); }
function monthOf(t) { return t.slice(0, 7); }
function lastMonths(now, n) {
  const d = new Date(now), out = [];
  for (let i = n - 1; i >= 0; i--) {
    const m = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - i, 1));
    out.push(m.toISOString().slice(0, 7));
  }
  return out;
}
const palette = ["#3b6fd8", "#e07b39", "#2f9e6e", "#a05cc9", "#d4a017", "#c2456b", "#4aa8c4", "#7a8a2e"];
// colours gives each partner of a page its own colour; grey is no one.
function colours(partners) {
  const seen = [...new Set(partners.filter(Boolean))];
  return (p) => (p ? palette[seen.indexOf(p) % palette.length] : "#c9d1db");
}
function resourceLink(tenant, resource) {
  return h("a", { href: `#/resource/${encodeURIComponent(tenant)}/${encodeURIComponent(resource)}` }, resource);
}
function table(head, rows) {
  return h("table", {}, h("tr", {}, head.map((c) => h("th", {}, c))), rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c)))));
}

// Pages.

function loginPage() {
  const input = h("input", { type: "password", id: "token", placeholder: "pal_…", autocomplete: "off" });
  show(h("h1", {}, "Log in"),
    h("form", { class: "login", id: "login", onsubmit: (e) => {
      e.preventDefault();
      localStorage.setItem("pal.token", input.value.trim());
      location.hash = "#/";
      route();
    } },
    h("p", {}, "Paste a token of this service: one from pal token issue, or your organisation's sign-in token."),
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
  const month = /^\d{4}-\d{2}$/.test(monthParam || "") ? monthParam : monthOf(me.now);
  const months = lastMonths(`${month}-15T00:00:00Z`, 6);
  const [attr, changes, score, azure, diagnosis, links, ...reports] = await Promise.all([
    api("/v1/attribution"), allChanges(),
    api(`/v1/reports/pcs?month=${month}&org=${org}`), api(`/v1/reports/azure?month=${month}`), api(`/v1/diagnosis?org=${org}`),
    api(`/v1/links?org=${org}`),
    ...months.map((m) => api(`/v1/reports/monthly?month=${m}`))]);
  // The operator reads every organisation's rows: the page keeps this one's.
  const mine = (r) => r.org === org || (r.shares || []).some((s) => s.org === org);
  const resources = attr.resources.filter(mine);
  for (const r of reports) {
    r.workloads = r.workloads.filter((w) => w.org === org);
    r.orgs = r.orgs.filter((o) => o.org === org);
  }
  const names = orgNames(reports);
  const current = reports[reports.length - 1];
  const orgRow = current.orgs[0] || { mcv: 0, customers: 0, deployments: 0 };
  const end = new Date(`${month}-01T00:00:00Z`);
  end.setUTCMonth(end.getUTCMonth() + 1);
  const until = end < new Date(me.now) ? end.toISOString() : me.now;
  const since = new Date(new Date(until).getTime() - 30 * 86400e3).toISOString();
  const recent = changes.filter((c) => (c.from.org === org || c.to.org === org) && c.time >= since && c.time <= until);
  const picker = h("select", { id: "month", onchange: (e) => { location.hash = `#/partner/${org}/${e.target.value}`; } },
    lastMonths(me.now, 12).reverse().map((m) => h("option", m === month ? { value: m, selected: "" } : { value: m }, m)));
  const points = h("div", { class: "points", id: "score" }, Object.keys(maxPoints).map((k) => [
    h("span", {}, pointNames[k]),
    h("span", { class: "meter" }, h("span", { style: `width:${(100 * score.points[k]) / maxPoints[k]}%` })),
    h("span", {}, `${score.points[k]} / ${maxPoints[k]}`)]));
  const who = (side) => side.partner ? `${side.partner}${names[side.org] ? ` (${names[side.org]})` : ""}` : "no one";
  const name = names[org] || me.org_name || org;
  show(
    h("h1", { id: "title" }, `${name}: credit in ${month}`),
    h("p", {}, h("label", {}, "Month ", picker)),
    h("div", { class: "cards" },
      card("Customers", orgRow.customers, "customers"), card("Credited resources", resources.length, "resources"),
      card("MCV", orgRow.mcv.toLocaleString("en"), "mcv"), card("Deployments", orgRow.deployments, "deployments"),
      card("Capability score", `${score.total} / 100`, "total")),
    h("h2", {}, "MAU and MCV by month"), monthlyChart(months, reports),
    h("h2", {}, `Partner Capability Score, ${month}: ${score.qualified ? "qualified" : "not qualified"}`), points,
    h("h2", {}, "Credit gained and lost in the 30 days to " + until.slice(0, 10)),
    recent.length === 0 ? h("p", { class: "muted", id: "changes" }, "No change in those 30 days.") :
      h("div", { id: "changes" }, table(["When", "Resource", "Change", "Cause"], recent.map((c) => {
        const gained = c.to.org === org;
        return [c.time.slice(0, 10), resourceLink(c.tenant, c.resource),
          h("span", { class: gained ? "gain" : "loss" }, gained ? `gained from ${who(c.from)}` : `lost to ${who(c.to)}`),
          causeWords[c.cause] || c.cause];
      }))),
    azureSection(org, month, azure),
    h("h2", {}, "Where the credit is missing"),
    diagnosis.missing.length === 0 ? h("p", { class: "muted", id: "missing" }, "Nowhere: every resource the linked accounts work on is credited.") :
      [h("div", { id: "missing" }, table(["Customer", "Resource", "Account", "Why", "What would fix it"],
        diagnosis.missing.map((m) => [m.tenant, m.resource, `${m.account} (${m.partner})`, m.words, m.fix]))),
      download("missing-credit.csv", ["tenant", "resource", "account", "partner", "reason", "why", "fix"],
        diagnosis.missing.map((m) => [m.tenant, m.resource, m.account, m.partner, m.reason, m.words, m.fix]))],
    diagnosis.at_risk.length === 0 ? null : [h("h2", {}, "Credit that ends when one person leaves"),
      h("div", { id: "at-risk" }, table(["Customer", "Only account", "Resources", "Which"], atRiskByAccount(diagnosis.at_risk).map((g) =>
        [g.tenant, `${g.account} (${g.partner})`, g.resources.length, listSome(g.resources)]))),
      download("at-risk.csv", ["tenant", "resource", "kind", "account", "partner"],
        diagnosis.at_risk.map((r) => [r.tenant, r.resource, r.kind, r.account, r.partner]))],
    h("h2", {}, "Where the links are"),
    links.links.length === 0 ? h("p", { class: "muted", id: "links" }, "No account links one of the organisation's location IDs.") :
      [h("div", { id: "links" }, table(["Customer", "Account", "Partner ID", "Since", "Resources it carries now"],
        links.links.map((l) => [l.tenant, l.account, l.partner, l.since.slice(0, 10), l.resources]))),
      download("links.csv", ["tenant", "account", "partner", "since", "resources"], links.links.map((l) => [l.tenant, l.account, l.partner, l.since, l.resources]))],
    h("h2", {}, "Credited resources now"),
    h("div", { id: "resources" }, table(["Customer", "Resource", "Kind", "Partner ID", "Since"],
      resources.map((r) => [r.tenant, resourceLink(r.tenant, r.resource), r.kind, r.partner, (r.since || "").slice(0, 10)]))),
    download("credited-resources.csv", ["tenant", "resource", "kind", "partner", "org", "account", "since"],
      resources.map((r) => [r.tenant, r.resource, r.kind, r.partner, r.org, r.account, r.since || ""])));
}

// orgNames maps organisations to their names, from monthly reports.
function orgNames(reports) {
  const out = {};
  for (const r of reports) for (const o of r.orgs) if (o.name) out[o.org] = o.name;
  return out;
}

// download is a link that saves rows as a CSV file, made in the page from
// what the page shows.
// atRiskByAccount groups the resources whose credit hangs on one account
// by that account, the accounts carrying most first: who the partner
// cannot afford to lose.
function atRiskByAccount(rows) {
  const groups = new Map();
  for (const r of rows) {
    const k = r.tenant + "\u0000" + r.account;
    if (!groups.has(k)) groups.set(k, { tenant: r.tenant, account: r.account, partner: r.partner, resources: [] });
    groups.get(k).resources.push(r.resource);
  }
  return [...groups.values()].sort((a, b) => b.resources.length - a.resources.length ||
    a.tenant.localeCompare(b.tenant) || a.account.localeCompare(b.account));
}

// listSome shows the first few of a list, the rest a click away.
function listSome(items, few = 3) {
  if (items.length <= few) return items.join(", ");
  return h("details", {}, h("summary", {}, `${items.slice(0, few).join(", ")} and ${items.length - few} more`), items.slice(few).join(", "));
}

function download(name, head, rows) {
  const cell = (v) => /[",\n]/.test(String(v)) ? `"${String(v).replaceAll('"', '""')}"` : String(v);
  const text = [head, ...rows].map((r) => r.map(cell).join(",")).join("\n") + "\n";
  return h("p", { class: "download" }, h("a", { href: URL.createObjectURL(new Blob([text], { type: "text/csv" })), download: name, id: "download-" + name.replace(/\.csv$/, "") }, `Download ${name}`));
}

function card(label, value, id) {
  return h("div", { class: "card", id: "card-" + id }, h("div", { class: "value" }, value), h("div", { class: "label" }, label));
}

function monthlyChart(months, reports) {
  const mau = reports.map((r) => r.workloads.reduce((s, w) => s + w.mau, 0));
  const mcv = reports.map((r) => r.orgs.reduce((s, o) => s + o.mcv, 0));
  const W = 640, H = 180, top = 20, maxMAU = Math.max(1, ...mau), maxMCV = Math.max(1, ...mcv), step = W / months.length;
  const bar = (i, half, v, max, cls, label) => {
    const height = (H * v) / max, x = i * step + 8 + half * (step / 2 - 2);
    return [h("rect", { class: cls, x, y: top + H - height, width: step / 2 - 10, height }, h("title", {}, `${months[i]}: ${label}`)),
      h("text", { class: "value", x, y: top + H - height - 4 }, v.toLocaleString("en"))];
  };
  return h("svg", { width: W, height: H + top + 50, id: "chart", role: "img" },
    months.map((m, i) => h("g", {},
      bar(i, 0, mau[i], maxMAU, "bar", `${mau[i]} MAU`), bar(i, 1, mcv[i], maxMCV, "bar mcv", `MCV ${mcv[i]}`),
      h("text", { x: i * step + 8, y: top + H + 18 }, m))),
    h("g", { id: "legend" },
      h("rect", { class: "bar", x: 8, y: top + H + 30, width: 12, height: 12 }), h("text", { x: 26, y: top + H + 41 }, "MAU (monthly active users)"),
      h("rect", { class: "bar mcv", x: 240, y: top + H + 30, width: 12, height: 12 }), h("text", { x: 258, y: top + H + 41 }, "MCV (monthly consumption value)")));
}

// programmePage is the operator's view of the programme: every
// organisation month by month, its score and whether it qualifies, any
// partner's dashboard a click away, and what comes in.
async function programmePage(me) {
  const month = monthOf(me.now);
  const months = lastMonths(me.now, 6);
  const [intake, ...reports] = await Promise.all([api("/v1/intake"), ...months.map((m) => api(`/v1/reports/monthly?month=${m}`))]);
  const names = orgNames(reports);
  const orgs = [...new Set(reports.flatMap((r) => r.orgs.map((o) => o.org)))].sort();
  const scores = await Promise.all(orgs.map((o) => api(`/v1/reports/pcs?month=${month}&org=${o}`)));
  const row = (r, o) => r.orgs.find((x) => x.org === o) || { mcv: 0, customers: 0, deployments: 0 };
  const held = Object.entries(intake.held_by_code).sort();
  show(h("h1", { id: "title" }, "The programme"),
    h("h2", {}, `Organisations, ${months[0]} to ${month}`),
    h("div", { id: "programme" }, table(["Organisation", ...months.map((m) => `MCV ${m}`), `Customers ${month}`, `Deployments ${month}`, "Score", "Qualifies", ""],
      orgs.map((o, i) => [names[o] ? `${names[o]} (${o})` : o, ...reports.map((r) => row(r, o).mcv.toLocaleString("en")),
        row(reports[reports.length - 1], o).customers, row(reports[reports.length - 1], o).deployments, `${scores[i].total} / 100`,
        scores[i].qualified ? "yes" : "no", h("a", { href: `#/partner/${o}/${month}`, class: "dashboard-link" }, "dashboard")]))),
    download("programme.csv", ["org", "name", ...months.map((m) => `mcv_${m}`), "score", "qualified"],
      orgs.map((o, i) => [o, names[o] || "", ...reports.map((r) => row(r, o).mcv), scores[i].total, scores[i].qualified])),
    h("h2", {}, "What comes in"),
    h("div", { id: "intake" }, table(["Day", "Events"], intake.days.filter((d) => d.events > 0).map((d) => [d.day, d.events]))),
    h("p", { id: "held" }, intake.held === 0 ? "No event is held." :
      `${intake.held} events held (stored, refused by the state as it stands): ${held.map(([c, n]) => `${c} ${n}`).join(", ")}.`));
}

// azureSection shows the organisation's Azure consumed revenue of the
// month, by customer and subscription; nothing when it has none.
function azureSection(orgID, month, azure) {
  const org = azure.orgs.find((o) => o.org === orgID);
  if (!org) return null;
  const money = (x) => Number(x).toLocaleString("en", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  return [h("h2", {}, `Azure consumed revenue in ${month}`),
    h("div", { class: "cards", id: "azure-cards" },
      card("ACR", money(org.acr), "acr"), card("PEC-eligible cost", money(org.pec_eligible_cost), "pec-eligible"),
      card("Partner earned credit", money(org.pec_credit), "pec-credit"), card("Azure customers", org.customers, "azure-customers")),
    h("div", { id: "azure" }, table(["Customer", "Subscription", "ACR", "PEC-eligible cost"],
      azure.subscriptions.filter((r) => r.org === orgID).map((r) => [r.tenant, r.subscription, money(r.acr), money(r.pec_eligible_cost)]))),
    download("azure-subscriptions.csv", ["tenant", "subscription", "org", "acr", "pec_eligible_cost"],
      azure.subscriptions.filter((r) => r.org === orgID).map((r) => [r.tenant, r.subscription, r.org, r.acr, r.pec_eligible_cost]))];
}

async function resourcePage(me, tenant, resource) {
  const q = `tenant=${encodeURIComponent(tenant)}&resource=${encodeURIComponent(resource)}`;
  const tl = await api(`/v1/timeline?${q}`);
  if (tl.azure) return azureResourcePage(me, tenant, resource, q, tl.intervals);
  const ivs = tl.intervals;
  if (ivs.length === 0) return fail(new Error(`${resource} has no history in ${tenant}`));
  // What held at the start of each interval: the environment's type, and
  // the owner and co-owners with their links.
  // A partner reader may not see the instants credited to others: those
  // lanes say so.
  const hidden = { counted: false, env_type: "not yours to see", environment: "", candidates: [], hidden: true };
  const states = await Promise.all(ivs.map((iv) => api(`/v1/explain?${q}&at=${iv.from}`).catch(() => hidden)));
  const accounts = (st) => st.hidden ? "not yours to see" : st.candidates.map((c) => `${c.account} (${c.role}, ${c.partner || "no link"})`).join("; ");
  const start = new Date(ivs[0].from).getTime(), end = Math.max(new Date(me.now).getTime(), start + 86400e3);
  const W = 900, x = (t) => ((t - start) / (end - start)) * W;
  const colour = colours(ivs.map((iv) => iv.partner));
  const lanes = [["Credited partner", 0], ["Environment", 1], ["Owner and co-owners", 2]];
  const explanation = h("div", { id: "explanation" }, h("p", { class: "muted" }, "Click the timeline to see why, at that instant."));
  const svg = h("svg", { width: W + 150, height: 150, id: "timeline", onclick: async (e) => {
    const box = svg.getBoundingClientRect();
    const px = Math.min(W, Math.max(0, e.clientX - box.left - 150));
    const at = new Date(start + (px / W) * (end - start)).toISOString().slice(0, 19) + "Z";
    explain(explanation, tenant, resource, at);
  } },
  lanes.map(([name, i]) => h("text", { x: 0, y: 32 + i * 36 }, name)),
  h("g", { transform: "translate(150,0)" },
    ivs.map((iv, i) => {
      const from = new Date(iv.from).getTime(), to = iv.to ? new Date(iv.to).getTime() : end;
      const w = Math.max(1, x(to) - x(from)), st = states[i];
      const who = accounts(st);
      const label = iv.partner ? `${iv.partner} (${iv.account})` : iv.reason;
      return h("g", { class: "band" },
        h("rect", { x: x(from), y: 12, width: w, height: 30, fill: colour(iv.partner) },
          h("title", {}, `${iv.from.slice(0, 10)} – ${iv.to ? iv.to.slice(0, 10) : "now"}: ${label}`)),
        h("text", { x: x(from) + 4, y: 32 }, w > 60 ? (iv.partner || "—") : ""),
        h("rect", { x: x(from), y: 48, width: w, height: 30, fill: st.hidden ? "#e6ebf2" : st.counted ? "#cfe3d6" : "#f1d9c9" },
          h("title", {}, `${st.environment}: ${st.env_type}`)),
        h("text", { x: x(from) + 4, y: 68 }, w > 60 ? st.env_type : ""),
        h("rect", { x: x(from), y: 84, width: w, height: 30, fill: "#e6ebf2", stroke: "#fff" }, h("title", {}, who)),
        h("text", { x: x(from) + 4, y: 104 }, w > 60 && !st.hidden ? `${st.candidates.length} account${st.candidates.length === 1 ? "" : "s"}` : ""));
    }),
    h("text", { x: 0, y: 136 }, ivs[0].from.slice(0, 10)), h("text", { x: W - 70, y: 136 }, me.now.slice(0, 10))));
  show(h("h1", { id: "title" }, `${resource} in ${tenant}`),
    h("p", { class: "muted" }, "Over time: who is credited (grey: no one), the environment's type, and the accounts that could be credited. Hover for details."),
    svg,
    h("div", { id: "intervals" }, table(["From", "To", "Partner", "Organisation", "Account", "Environment", "Owner and co-owners"],
      ivs.map((iv, i) => [iv.from.slice(0, 10), iv.to ? iv.to.slice(0, 10) : "now", iv.partner || "—", iv.org || "—", iv.account || "—",
        states[i].env_type, accounts(states[i])]))),
    explanation);
}

async function explain(into, tenant, resource, at) {
  try {
    const x = await api(`/v1/explain?tenant=${encodeURIComponent(tenant)}&resource=${encodeURIComponent(resource)}&at=${at}`);
    const verdict = x.winner ? `Credited to ${x.winner.partner} (organisation ${x.winner.org}) through ${x.winner.account}, associated ${x.winner.since.slice(0, 10)}.` :
      x.would_be_winner ? `${x.would_be_winner.partner} would be credited, but the ${x.env_type} environment is not counted.` :
      `Credited to no one (${x.reason}).`;
    fill(into, h("h2", {}, `Why, at ${at}`),
      h("p", { id: "verdict" }, verdict),
      table(["Account", "Role", "Partner ID", "Associated", "Eligible"], x.candidates.map((c) =>
        [c.account, c.role, c.partner || "no link", c.association.slice(0, 10), c.eligible ? "yes" : `no: ${c.reason}`])));
  } catch (err) {
    fill(into, h("p", { class: "error" }, err.message));
  }
}

// behind lists the assignments through which a location is recognised, from
// an Azure explanation.
function behind(x, partner) {
  if (x.hidden) return "not yours to see";
  return x.assignments.flatMap((a) => a.accounts.filter((c) => c.eligible && c.partner === partner)
    .map((c) => `${a.role} on ${a.scope} (${a.assignment}, ${c.account}${a.principal !== c.account ? " in " + a.principal : ""})`)).join("; ");
}

// azureResourcePage shows an Azure resource: a lane per credited partner
// with its intervals and shares, and the assignments behind each.
async function azureResourcePage(me, tenant, resource, q, ivs) {
  if (ivs.length === 0) return fail(new Error(`no partner was ever recognised for ${resource} in ${tenant}`));
  const hidden = { hidden: true, assignments: [] };
  const states = await Promise.all(ivs.map((iv) => api(`/v1/explain?${q}&at=${iv.from}`).catch(() => hidden)));
  const partners = [...new Set(ivs.map((iv) => iv.partner))];
  const start = Math.min(...ivs.map((iv) => new Date(iv.from).getTime()));
  const end = Math.max(new Date(me.now).getTime(), start + 86400e3, ...ivs.map((iv) => iv.to ? new Date(iv.to).getTime() : 0));
  const W = 900, x = (t) => ((t - start) / (end - start)) * W, colour = colours(partners);
  const explanation = h("div", { id: "explanation" }, h("p", { class: "muted" }, "Click the timeline to see every assignment at that instant."));
  const svg = h("svg", { width: W + 150, height: 40 + 36 * partners.length, id: "timeline", onclick: (e) => {
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
  show(h("h1", { id: "title" }, `${resource} in ${tenant}`),
    h("p", { class: "muted" }, "Azure recognition follows role and scope: a lane per partner credited, lighter when it holds a share. Hover for details."),
    svg,
    h("div", { id: "intervals" }, table(["From", "To", "Partner", "Organisation", "Share", "Assignments behind it"],
      ivs.map((iv, i) => [iv.from.slice(0, 16).replace("T", " "), iv.to ? iv.to.slice(0, 16).replace("T", " ") : "now", iv.partner, iv.org,
        String(Math.round(iv.share * 1000) / 1000), behind(states[i], iv.partner)]))),
    explanation);
}

async function explainAzure(into, tenant, resource, at) {
  try {
    const x = await api(`/v1/explain?tenant=${encodeURIComponent(tenant)}&resource=${encodeURIComponent(resource)}&at=${at}`);
    const credited = x.credited.map((c) => `${c.partner} (organisation ${c.org}, share ${Math.round(c.share * 1000) / 1000})`).join(", ");
    fill(into, h("h2", {}, `Why, at ${at}`),
      h("p", { id: "verdict" }, credited ? `Credited under policy ${x.azure_policy}: ${credited}.` : "No partner is recognised at that instant."),
      table(["Assignment", "Role", "Scope", "Principal", "Account", "Partner ID", "Counts"], x.assignments.flatMap((a) =>
        (a.accounts.length ? a.accounts : [{ account: "—", partner: "", eligible: false, words: "no account with a link acts through it" }]).map((c) =>
          [a.assignment, a.role, a.scope, a.principal_tenant === x.tenant ? a.principal : `${a.principal} (${a.principal_tenant})`,
            c.account, c.partner || "no link", c.eligible ? "yes" : `no: ${c.words}`]))));
  } catch (err) {
    fill(into, h("p", { class: "error" }, err.message));
  }
}

const causeWords = { "resource.coowner_added": "co-owner added", "resource.owner_changed": "owner changed", "pal.linked": "link set",
  "account.enabled": "account enabled", "resource.created": "resource created", "resource.activity": "activity", "solution.imported": "solution imported",
  "resource.coowner_removed": "co-owner removed", "pal.removed": "link removed", "account.disabled": "account disabled",
  "account.deleted": "account deleted", "resource.deleted": "resource deleted", "environment.changed": "environment changed" };

// allChanges reads the whole feed of changes the caller may see.
async function allChanges() {
  let since = 0, out = [];
  for (;;) {
    const page = await api(`/v1/changes?since=${since}&limit=1000`);
    if (page.changes.length === 0) return out;
    out = out.concat(page.changes);
    since = page.next;
  }
}

// changesTable lists credit changes, newest first, marking those gained by
// a role alone.
function changesTable(changes) {
  const rows = [...changes].reverse().map((c) => {
    const cause = causeWords[c.cause] || c.cause;
    const note = c.role_only ? h("span", { class: "loss" }, `gained by a role alone: ${cause}, no edit or publish before`) :
      c.to.partner && c.activity_before ? "worked on it before" : "";
    return [c.time.slice(0, 10), c.resource, c.from.partner || "no one", c.to.partner || "no one", c.to.account || "—", cause, note];
  });
  return table(["When", "Resource", "From", "To", "Gained by", "Cause", "Note"], rows);
}

async function tenantPage(me) {
  const [attr, links, changes] = await Promise.all([api("/v1/attribution"), me.tenant ? api(`/v1/links?tenant=${me.tenant}`) : { links: [] },
    me.tenant ? allChanges() : []]);
  show(h("h1", { id: "title" }, me.tenant ? `Tenant ${me.tenant}` : "All tenants"),
    h("h2", {}, "Resources and who is credited"),
    h("div", { id: "resources" }, table(["Tenant", "Resource", "Kind", "Environment", "Credited to", "Since"],
      attr.resources.map((r) => [r.tenant, resourceLink(r.tenant, r.resource), r.kind, r.environment,
        r.partner || h("span", { class: "muted" }, r.reason), (r.since || "").slice(0, 10)]))),
    me.tenant ? [h("h2", {}, "Accounts that hold a partner link"),
      h("div", { id: "links" }, table(["Account", "Partner ID"], links.links.map((l) => [l.account, l.partner])))] : null,
    me.tenant ? [h("h2", {}, "Who took the credit"),
      h("p", { class: "muted" }, "Every change of the partner credited for a resource of this tenant, newest first. A partner that gains the credit by a role alone — made co-owner or owner, with no edit or publish in the 90 days before — is marked."),
      h("div", { id: "credit-changes" }, changesTable(changes))] : null,
    me.tenant ? h("p", {}, h("a", { href: "#/whatif", id: "whatif-link" }, "What if…")) : null);
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
  const [attr, links] = await Promise.all([api("/v1/attribution"), api(`/v1/links?tenant=${me.tenant}`)]);
  const resources = attr.resources.filter((r) => r.kind !== "azure_resource");
  const text = h("textarea", { id: "events" });
  const out = h("div", { id: "whatif-result" });
  const resource = h("select", { id: "wi-resource" }, resources.map((r) => h("option", { value: r.resource }, `${r.resource} (${r.kind}, credited to ${r.partner || "no one"})`)));
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
  show(h("h1", { id: "title" }, "What if…"),
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
            table(["Resource", "Now", "Would be"], changed.map((r) => [r.resource, (before[r.resource] || {}).partner || "no one", r.partner || `no one (${r.reason})`])),
          res.refused.length ? h("p", { class: "error" }, res.refused.map((f) => `line ${f.line}: ${f.code}: ${f.message}`).join("; ")) : null);
      } catch (err) { fill(out, h("p", { class: "error" }, err.message)); }
    } }, "See what the credit would become"), out);
}

const partnersPath = "/providers/Microsoft.ManagementPartner/partners";

// linkPage is an account's own link: the three flows of the FAQ (link a
// partner ID, change it, remove it) and what the link carries today.
async function linkPage(me) {
  let link = null;
  try { link = await api(partnersPath); } catch (err) { link = null; }
  const credit = await api("/v1/me/credit");
  const result = h("div", { id: "link-result" });
  const input = h("input", { type: "text", id: "partner-id", placeholder: "a location ID: 6 to 10 digits", autocomplete: "off" });
  const act = (method, id, done) => async (e) => {
    e.preventDefault();
    try {
      await api(`${partnersPath}/${encodeURIComponent(id())}`, { method });
      location.hash = "#/link"; await route();
      fill(document.getElementById("link-result"), h("p", { class: "gain", id: "link-done" }, done));
    } catch (err) { fill(result, h("p", { class: "error", id: "link-error" }, err.message)); }
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
  show(h("h1", { id: "title" }, "Your partner link"), status, result, forms,
    h("h2", {}, "Resources your link carries credit on today"),
    credit.resources.length === 0 ? h("p", { class: "muted", id: "my-credit" }, "None today.") :
      h("div", { id: "my-credit" }, table(["Resource", "Kind", "Environment", "Partner ID", "Since"],
        credit.resources.map((r) => [r.resource, r.kind, r.environment, r.partner, (r.since || "").slice(0, 10)]))));
}

async function route() {
  if (!token()) return loginPage();
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  try {
    const me = await api("/v1/me");
    document.getElementById("who").textContent = `${me.role}${me.tenant ? " of " + me.tenant : ""}${me.org ? " of " + (me.org_name || me.org) : ""}`;
    const nav = document.getElementById("nav");
    nav.replaceChildren(...({ "partner-reader": [["#/partner", "Dashboard"]], "tenant-admin": [["#/tenant", "Tenant"], ["#/whatif", "What if"]],
      operator: [["#/programme", "Programme"], ["#/tenant", "Resources"]] }[me.role] || []).map(([href, label]) => h("a", { href }, label)));
    document.getElementById("logout").hidden = false;
    switch (parts[0]) {
      case "login": return loginPage();
      case "partner": return await partnerPage(me, parts[1], parts[2]);
      case "programme": return await programmePage(me);
      case "resource": return await resourcePage(me, parts[1], parts[2]);
      case "tenant": return await tenantPage(me);
      case "whatif": return await whatIfPage(me);
      case "link": return await linkPage(me);
      default: return await homePage(me);
    }
  } catch (err) { fail(err); }
}

document.getElementById("logout").addEventListener("click", () => { localStorage.removeItem("pal.token"); location.hash = "#/login"; route(); });
window.addEventListener("hashchange", route);
route();
