// Lethe console: plain JavaScript over the same API as everyone else
// (/openapi.json). Values from the database are only ever put in the page
// as text nodes, never as HTML.
"use strict";

const main = document.getElementById("main");
const TOKEN_KEY = "lethe-token";
let me = null;

// ---------------------------------------------------------------- helpers

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function show(...nodes) {
  main.replaceChildren(...nodes);
}

// Each navigation gets a number; a page whose data arrives after the user
// (or a test) moved on to another page does not replace it.
let routeSeq = 0;
function showIf(seq, ...nodes) {
  if (seq === routeSeq) show(...nodes);
}

function badge(text) {
  return h("span", { class: "badge " + text }, text);
}

function keyText(key) {
  if (key && typeof key === "object") {
    const parts = Object.entries(key);
    if (parts.length === 1) return String(parts[0][1]);
    return parts.map(([k, v]) => `${k}=${v}`).join(",");
  }
  return String(key);
}

function when(t) {
  return t ? t.replace("T", " ").replace(/\.\d+Z$/, "Z") : "";
}

function rowsText(counts) {
  return (counts || [])
    .filter((c) => c.rows > 0)
    .map((c) => `${c.rows} ${c.entity}`)
    .join(", ") || "no rows";
}

class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code;
    this.details = e.details;
    this.hint = e.hint;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + (sessionStorage.getItem(TOKEN_KEY) || "") };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  if (res.status === 401) { signOut(); }
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

function errorBox(e) {
  const lines = [e.message];
  if (e.code === "restore_conflict" && e.details && e.details.conflicts) {
    for (const c of e.details.conflicts) lines.push(`${c.entity} ${keyText(c.restored)} clashes with active ${keyText(c.active)} on ${c.columns}`);
  }
  return h("div", { class: "error", role: "alert", "data-testid": "error" },
    lines.map((l) => h("div", {}, l)), e.hint ? h("div", { class: "muted" }, "Hint: " + e.hint) : null);
}

async function guarded(fn) {
  try { await fn(); } catch (e) { main.prepend(errorBox(e)); }
}

// A confirmation dialog; resolves true when confirmed.
function confirmDialog(title, body, okText, danger) {
  const dlg = document.getElementById("dialog");
  document.getElementById("dialog-title").textContent = title;
  document.getElementById("dialog-body").replaceChildren(...[body].flat());
  const ok = document.getElementById("dialog-ok");
  ok.textContent = okText || "Confirm";
  ok.className = danger ? "danger" : "primary";
  ok.disabled = false;
  return new Promise((resolve) => {
    dlg.onclose = () => resolve(dlg.returnValue === "ok");
    dlg.showModal();
  });
}

function canOperate() { return me && (me.role === "operator" || me.role === "admin"); }
function canAdmin() { return me && me.role === "admin"; }

// ---------------------------------------------------------------- sign-in

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  me = null;
  document.getElementById("nav").hidden = true;
  document.getElementById("who").textContent = "";
  signIn();
}

function signIn(message) {
  const input = h("input", { type: "password", id: "token", size: 60, placeholder: "lethe_...", autocomplete: "off" });
  show(h("section", {},
    h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, "Paste an API token. Create one with ", h("code", {}, "lethe token create NAME --role viewer|operator|admin"), ". It stays in this tab only."),
    message ? h("div", { class: "error" }, message) : null,
    h("form", { class: "inline", onsubmit: async (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      await start();
    } }, input, h("button", { class: "primary", id: "sign-in" }, "Sign in"))));
  input.focus();
}

async function start() {
  try {
    me = await api("GET", "/v1/whoami");
  } catch (e) {
    sessionStorage.removeItem(TOKEN_KEY);
    return signIn(e.status === 401 ? "That token is unknown or revoked." : e.message);
  }
  document.getElementById("nav").hidden = false;
  document.getElementById("who").replaceChildren(`${me.name} (${me.role}) `,
    h("button", { onclick: signOut }, "Sign out"));
  route();
}

// ---------------------------------------------------------------- pages

let entitiesCache = null;
async function entities() {
  if (!entitiesCache) entitiesCache = await api("GET", "/v1/entities");
  return entitiesCache;
}

async function overview() {
  const seq = routeSeq;
  const [stats, verify, del] = await Promise.all([
    api("GET", "/v1/stats"), api("GET", "/v1/audit/verify"), api("GET", "/v1/deliveries?limit=1"),
  ]);
  const max = Math.max(1, ...stats.map((s) => s.active + s.deleted + s.archived + s.snapshots));
  const pct = (n) => `${(100 * n) / max}%`;
  const bars = h("div", { class: "bars", "data-testid": "chart" },
    stats.map((s) => {
      const deleted = s.deleted + s.archived + s.snapshots;
      return [
        h("a", { href: `#/trash/${encodeURIComponent(s.entity)}` }, s.entity),
        h("div", { class: "bar", title: `${s.active} active, ${deleted} deleted, ${s.due_for_purge} due for purge` },
          h("span", { class: "a", style: `width:${pct(s.active)}` }),
          h("span", { class: "d", style: `width:${pct(Math.max(0, deleted - s.due_for_purge))}` }),
          h("span", { class: "p", style: `width:${pct(s.due_for_purge)}` })),
        h("span", { class: "muted" }, `${s.active} / ${deleted} / ${s.due_for_purge}`),
      ];
    }));
  const open = del.summary.filter((s) => s.state === "pending" || s.state === "retrying").reduce((a, s) => a + s.deliveries, 0);
  const dead = del.summary.filter((s) => s.state === "dead").reduce((a, s) => a + s.deliveries, 0);
  showIf(seq, 
    h("h1", {}, "Overview"),
    h("div", { class: "grid" },
      h("div", { class: "card" }, h("div", { class: "muted" }, "Audit chain"),
        h("div", { class: "stat", "data-testid": "chain" }, verify.ok ? "intact" : "BROKEN"),
        h("div", { class: "muted" }, verify.ok ? `${verify.entries} entries` : `at entry ${verify.broken_at}: ${verify.problem}`)),
      h("div", { class: "card" }, h("div", { class: "muted" }, "Deliveries waiting"),
        h("div", { class: "stat" }, String(open + del.undispatched)), h("a", { href: "#/deliveries" }, `${dead} dead`)),
      h("div", { class: "card" }, h("div", { class: "muted" }, "Rows due for purge"),
        h("div", { class: "stat" }, String(stats.reduce((a, s) => a + s.due_for_purge, 0))),
        h("span", { class: "muted" }, `${stats.reduce((a, s) => a + s.held, 0)} held`))),
    h("section", {}, h("h2", {}, "Rows per entity"),
      h("p", { class: "legend muted" }, h("span", { style: "background:#7a9cf0" }), "active", h("span", { style: "background:#f79009" }), "deleted (restorable)", h("span", { style: "background:#d92d20" }), "due for purge"),
      bars));
}

async function trash(entity, params) {
  const seq = routeSeq;
  const list = await entities();
  if (!entity) entity = list.length ? list[0].name : "";
  const q = params.get("q") || "";
  const cursor = params.get("cursor") || "";
  const page = await api("GET", `/v1/trash/${encodeURIComponent(entity)}?limit=25&q=${encodeURIComponent(q)}&cursor=${encodeURIComponent(cursor)}`);
  const select = h("select", { id: "trash-entity", onchange: () => { location.hash = `#/trash/${encodeURIComponent(select.value)}`; } },
    list.map((e) => h("option", { value: e.name, selected: e.name === entity }, e.name)));
  const search = h("input", { id: "trash-search", value: q, placeholder: "search values" });
  const rows = page.items.map((it) => h("tr", { "data-key": keyText(it.key) },
    h("td", { class: "mono" }, keyText(it.key)),
    h("td", {}, when(it.deleted_at)),
    h("td", {}, it.place),
    h("td", { class: "mono" }, it.deletion_id ? h("a", { href: `#/deletions/${it.deletion_id}` }, it.deletion_id.slice(0, 8)) : "outside Lethe"),
    h("td", {}, when(it.restorable_until) || "no retention"),
    h("td", { class: "mono" }, JSON.stringify(it.row).slice(0, 120)),
    h("td", {}, it.deletion_id && canOperate()
      ? h("button", { class: "restore", onclick: () => restoreFlow(it.deletion_id) }, "Restore…") : null)));
  showIf(seq, 
    h("h1", {}, "Trash"),
    h("form", { class: "inline", onsubmit: (ev) => { ev.preventDefault(); location.hash = `#/trash/${encodeURIComponent(entity)}?q=${encodeURIComponent(search.value)}`; } },
      h("label", {}, "Entity", select), h("label", {}, "Search", search), h("button", {}, "Search")),
    h("section", {},
      page.items.length === 0 ? h("p", { class: "muted", "data-testid": "trash-empty" }, "Nothing deleted here.") :
        h("table", { "data-testid": "trash" },
          h("thead", {}, h("tr", {}, ["Key", "Deleted", "Where", "Deletion", "Restorable until", "Row", ""].map((t) => h("th", {}, t)))),
          h("tbody", {}, rows)),
      h("div", { class: "pager" }, cursor ? h("a", { href: `#/trash/${encodeURIComponent(entity)}?q=${encodeURIComponent(q)}` }, "First page") : null,
        page.next ? h("a", { href: `#/trash/${encodeURIComponent(entity)}?q=${encodeURIComponent(q)}&cursor=${encodeURIComponent(page.next)}` }, "Next page") : null)));
}

// Shows what a restore will do (and any conflict) before doing it.
async function restoreFlow(id) {
  const p = await api("POST", `/v1/deletions/${id}/restore-preview`);
  const refused = p.conflicts.length || p.deleted_parents.length || p.problems.length;
  const reason = h("input", { id: "restore-reason", placeholder: "reason (no personal data)", size: 40 });
  const body = [
    h("p", { "data-testid": "restore-plan" }, `This restores deletion ${id.slice(0, 8)}: ${rowsText(p.would_restore)}.`),
    p.nullified.length ? h("p", {}, `It also puts back references set to NULL: ${rowsText(p.nullified)}.`) : null,
    p.conflicts.map((c) => h("div", { class: "error" }, `${c.entity} ${keyText(c.restored)} clashes with active ${keyText(c.active)} on ${c.columns}`)),
    p.deleted_parents.map((d) => h("div", { class: "error" }, `parent ${d.relation} ${keyText(d.parent)} is ${d.status}${d.deletion_id ? " by " + d.deletion_id : ""}: restore that first`)),
    p.problems.map((x) => h("div", { class: "error" }, x.message)),
    refused ? null : h("label", {}, "Reason ", reason),
  ];
  const ok = await confirmDialog("Restore", body, refused ? "Cannot restore" : "Restore", false);
  if (!ok || refused) return;
  await guarded(async () => {
    const r = await api("POST", `/v1/deletions/${id}/restore`, { reason: reason.value || null });
    await route();
    main.prepend(h("div", { class: "notice", "data-testid": "notice" }, `Restored ${rowsText(r.restored)}.`));
  });
}

async function deletePage(params) {
  const seq = routeSeq;
  const list = await entities();
  const select = h("select", { id: "delete-entity" }, list.map((e) => h("option", { value: e.name, selected: e.name === params.get("entity") }, e.name)));
  const key = h("input", { id: "delete-key", placeholder: "42 or col=value,col=value", value: params.get("key") || "" });
  const out = h("div", {});
  const plan = async (ev) => {
    ev.preventDefault();
    out.replaceChildren();
    try {
      const p = await api("GET", `/v1/entities/${encodeURIComponent(select.value)}/${encodeURIComponent(key.value)}/plan`);
      const blocked = p.blocked_by.length > 0;
      const reason = h("input", { id: "delete-reason", placeholder: "reason (no personal data)", size: 40 });
      out.append(h("section", {},
        h("p", { "data-testid": "delete-plan" }, `This removes ${rowsText(p.affected)}.`),
        p.nullified.length ? h("p", {}, `References set to NULL: ${rowsText(p.nullified)}.`) : null,
        p.blocked_by.map((b) => h("div", { class: "error" }, `Blocked by ${b.relation}: ${b.rows} active row(s) still reference it.`)),
        canOperate() && !blocked ? h("form", { class: "inline", onsubmit: async (e2) => {
          e2.preventDefault();
          try {
            const d = await api("POST", "/v1/deletions", { entity: select.value, key: key.value, reason: reason.value || null });
            out.replaceChildren(h("div", { class: "notice", "data-testid": "notice" },
              `Deleted ${rowsText(d.affected)} as deletion `, h("a", { href: `#/deletions/${d.deletion_id}` }, d.deletion_id), ". ",
              h("a", { href: `#/trash/${encodeURIComponent(select.value)}` }, "See the trash")));
          } catch (e) { out.prepend(errorBox(e)); }
        } }, h("label", {}, "Reason", reason), h("button", { class: "danger", id: "confirm-delete" }, "Delete")) : null));
    } catch (e) { out.append(errorBox(e)); }
  };
  showIf(seq, h("h1", {}, "Delete"),
    h("p", { class: "muted" }, "See what a delete removes before you confirm it. Deletions can be restored from the trash."),
    h("form", { class: "inline", onsubmit: plan }, h("label", {}, "Entity", select), h("label", {}, "Key", key), h("button", { class: "primary", id: "plan" }, "Show plan")),
    out);
}

async function deletions() {
  const seq = routeSeq;
  const list = await api("GET", "/v1/deletions?limit=100");
  showIf(seq, h("h1", {}, "Deletions"), h("section", {}, h("table", {},
    h("thead", {}, h("tr", {}, ["Deletion", "When", "Kind", "Root", "Rows", "Actor", "Status"].map((t) => h("th", {}, t)))),
    h("tbody", {}, list.map((d) => h("tr", {},
      h("td", { class: "mono" }, h("a", { href: `#/deletions/${d.id}` }, d.id.slice(0, 8))),
      h("td", {}, when(d.at)), h("td", {}, d.kind),
      h("td", {}, `${d.entity} ${d.kind === "delete" ? keyText(d.key) : ""}`),
      h("td", {}, rowsText(d.affected)), h("td", {}, d.actor || ""),
      h("td", {}, badge(d.restored_at ? "restored" : d.purged_at ? "purged" : d.kind === "delete" ? "deleted" : d.kind))))))));
}

async function deletion(id) {
  const seq = routeSeq;
  const d = await api("GET", `/v1/deletions/${id}`);
  const r = d.deletion;
  showIf(seq, h("h1", {}, `Deletion ${id}`),
    h("section", {},
      h("p", {}, badge(d.status), ` ${r.kind} of ${r.entity} ${keyText(r.key)} at ${when(r.at)} by ${r.actor || "?"}${r.reason ? " — " + r.reason : ""}`),
      h("p", {}, `Rows: ${rowsText(r.affected)}`),
      r.restored_at ? h("p", {}, `Restored at ${when(r.restored_at)} by ${r.restored_by || "?"}`) : null,
      d.status === "deleted" && canOperate() ? h("button", { class: "primary restore", onclick: () => restoreFlow(id) }, "Restore…") : null),
    h("h2", {}, "Outbox records"),
    h("table", {}, h("thead", {}, h("tr", {}, ["Event", "Entity", "Rows"].map((t) => h("th", {}, t)))),
      h("tbody", {}, d.outbox.map((o) => h("tr", {}, h("td", {}, o.event), h("td", {}, o.entity), h("td", {}, String(o.rows)))))));
}

async function deliveries(params) {
  const seq = routeSeq;
  const sink = params.get("sink") || "";
  const d = await api("GET", `/v1/deliveries?limit=100${sink ? "&sink=" + encodeURIComponent(sink) : ""}`);
  const per = {};
  for (const s of d.sinks) per[s] = { pending: 0, retrying: 0, delivered: 0, dead: 0 };
  for (const s of d.summary) (per[s.sink] = per[s.sink] || {})[s.state] = s.deliveries;
  showIf(seq, h("h1", {}, "Deliveries"),
    h("p", { class: "muted" }, `${d.undispatched} outbox record(s) not yet dispatched.`),
    h("table", { "data-testid": "sinks" }, h("thead", {}, h("tr", {}, ["Sink", "Pending", "Retrying", "Delivered", "Dead", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, Object.entries(per).map(([name, c]) => h("tr", {},
        h("td", {}, h("a", { href: `#/deliveries?sink=${encodeURIComponent(name)}` }, name)),
        h("td", {}, String(c.pending || 0)), h("td", {}, String(c.retrying || 0)), h("td", {}, String(c.delivered || 0)), h("td", {}, String(c.dead || 0)),
        h("td", {}, c.dead && canOperate() ? h("button", { onclick: () => guarded(async () => {
          const r = await api("POST", `/v1/deliveries/replay-dead?sink=${encodeURIComponent(name)}`);
          await route(); main.prepend(h("div", { class: "notice" }, `${r.replayed} queued again.`));
        }) }, "Replay dead") : null))))),
    h("h2", {}, sink ? `Messages to ${sink}` : "Latest messages"),
    h("table", {}, h("thead", {}, h("tr", {}, ["Id", "Sink", "Entity", "Event", "State", "Attempts", "Next", "Last error", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, d.deliveries.map((m) => h("tr", {},
        h("td", {}, String(m.id)), h("td", {}, m.sink), h("td", {}, m.entity), h("td", {}, m.event), h("td", {}, badge(m.state)),
        h("td", {}, String(m.attempts)), h("td", {}, when(m.next_at)), h("td", {}, m.last_error || ""),
        h("td", {}, canOperate() ? h("button", { onclick: () => guarded(async () => { await api("POST", `/v1/deliveries/${m.id}/replay`); await route(); }) }, "Replay") : null))))));
}

async function erasures() {
  const seq = routeSeq;
  const list = await api("GET", "/v1/erasures?limit=100");
  const entity = h("input", { id: "erase-entity", placeholder: "subject entity" });
  const key = h("input", { id: "erase-key", placeholder: "key" });
  const ticket = h("input", { id: "erase-request", placeholder: "your request id" });
  showIf(seq, h("h1", {}, "Erasure requests"),
    canAdmin() ? h("section", {}, h("h2", {}, "New request (GDPR Art. 17)"),
      h("form", { class: "inline", onsubmit: (ev) => { ev.preventDefault(); guarded(async () => {
        const p = await api("POST", "/v1/erasures/preview", { entity: entity.value, key: key.value });
        const ok = await confirmDialog("Erase this subject?", [
          h("p", {}, `Rows: ${(p.entities || []).map((e) => `${e.entity}: ${e.action}`).join(", ") || "see the preview"}`),
          h("pre", {}, JSON.stringify(p, null, 2).slice(0, 2000))], "Erase", true);
        if (!ok) return;
        await api("POST", "/v1/erasures", { entity: entity.value, key: key.value, request_id: ticket.value || null });
        await route();
      }); } }, h("label", {}, "Entity", entity), h("label", {}, "Key", key), h("label", {}, "Request id", ticket), h("button", { class: "danger" }, "Preview and erase…"))) : null,
    h("table", {}, h("thead", {}, h("tr", {}, ["Request", "Entity", "State", "Steps", "Updated", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, list.map((r) => h("tr", {},
        h("td", { class: "mono" }, r.request_id), h("td", {}, r.entity), h("td", {}, badge(r.state)),
        h("td", {}, h("div", { class: "steps" }, (r.steps || []).map((s) => h("span", { class: "badge " + s.state, title: s.state }, s.name)))),
        h("td", {}, when(r.updated_at)),
        h("td", {}, canAdmin() && r.state !== "completed" ? h("button", { onclick: () => guarded(async () => { await api("POST", `/v1/erasures/${r.id}/resume`); await route(); }) }, "Resume") : null))))));
}

async function audit(params) {
  const seq = routeSeq;
  const before = params.get("before");
  const [page, verify] = await Promise.all([api("GET", `/v1/audit?limit=50${before ? "&before=" + before : ""}`), api("GET", "/v1/audit/verify")]);
  showIf(seq, h("h1", {}, "Audit log"),
    h("p", {}, "Chain: ", badge(verify.ok ? "ok" : "broken"), verify.ok ? ` ${verify.entries} entries, head ${verify.head.slice(0, 16)}…` : ` broken at entry ${verify.broken_at}: ${verify.problem}`),
    h("table", {}, h("thead", {}, h("tr", {}, ["Seq", "When", "Action", "Actor", "Entry"].map((t) => h("th", {}, t)))),
      h("tbody", {}, page.entries.map((e) => h("tr", {},
        h("td", {}, String(e.seq)), h("td", {}, when(e.at)), h("td", {}, e.action), h("td", {}, (e.entry && e.entry.actor) || ""),
        h("td", { class: "mono" }, JSON.stringify(e.entry).slice(0, 160)))))),
    page.next_before ? h("div", { class: "pager" }, h("a", { href: `#/audit?before=${page.next_before}` }, "Older entries")) : null);
}

// ---------------------------------------------------------------- routing

async function route() {
  if (!me) return;
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.getAttribute("href") === "#/" + (parts[0] || ""));
  }
  const my = ++routeSeq;
  show(h("p", { class: "muted" }, "Loading…"));
  try {
    switch (parts[0]) {
      case undefined: return await overview();
      case "trash": return await trash(parts[1], params);
      case "delete": return await deletePage(params);
      case "deletions": return parts[1] ? await deletion(parts[1]) : await deletions();
      case "deliveries": return await deliveries(params);
      case "erasures": return await erasures();
      case "audit": return await audit(params);
      default: return showIf(my, h("p", {}, "No such page. "), h("a", { href: "#/" }, "Overview"));
    }
  } catch (e) {
    showIf(my, errorBox(e));
  }
}

window.addEventListener("hashchange", route);
if (sessionStorage.getItem(TOKEN_KEY)) start(); else signIn();
