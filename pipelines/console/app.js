// The Portcullis console: a small page per view over the read API (docs/read-api.md), signed in
// with a bearer token kept in this tab's sessionStorage. Everything shown comes from event data
// that attackers can shape, so text goes in with textContent, never as HTML.

const TOKEN_KEY = "portcullis.token";
const LIVE_MAX_ROWS = 200;

// ---- small DOM helpers ----------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function time(t) {
  if (!t) return "";
  const d = new Date(t);
  return isNaN(d) ? String(t) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function outcomeBadge(outcome) {
  return h("span", { class: `outcome ${outcome}` }, outcome);
}

function reasonsText(reasons) {
  if (Array.isArray(reasons)) return reasons.join("; ");
  if (reasons === null || reasons === undefined) return "";
  return typeof reasons === "string" ? reasons : JSON.stringify(reasons);
}

function message(el, kind, text) {
  el.replaceChildren(text ? h("div", { class: kind, role: kind === "error" ? "alert" : "status" }, text) : "");
}

// ---- session and API ------------------------------------------------------------------------

const session = {
  token: sessionStorage.getItem(TOKEN_KEY),
  me: null,
  tenants: [],
};

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${session.token}` };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  if (res.status === 401 && !options.signingIn) {
    // The token expired or was revoked meanwhile: back to the sign-in, saying why.
    signOut(body && body.message);
    throw new ApiError(res.status, body);
  }
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

function signOut(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  session.token = null;
  session.me = null;
  stopLive();
  // Without a hashchange event, which would render again and lose the reason.
  history.replaceState(null, "", "#/signin");
  render(reason);
}

// A tenant the caller may act on as admin (replay), from its scopes.
function mayAdminister(tenant) {
  if (!session.me) return false;
  if (session.me.admin) return true;
  return tenant ? session.me.scopes.includes(`admin:${tenant}`) : false;
}

// A tenant whose approval requests the caller may answer, from its scopes.
function mayApprove(tenant) {
  if (!session.me) return false;
  if (session.me.admin) return true;
  return session.me.scopes.includes(`approve:${tenant}`) || session.me.scopes.includes(`admin:${tenant}`);
}

// A tenant whose compliance violations the caller may work, from its scopes.
function mayComply(tenant) {
  if (!session.me) return false;
  if (session.me.admin) return true;
  return session.me.scopes.includes(`comply:${tenant}`) || session.me.scopes.includes(`admin:${tenant}`);
}

// ---- pages ----------------------------------------------------------------------------------
// Each page: a path, a nav label, and a render function filling `main`. Later capabilities
// (agents, anomalies, evidence and approvals, compliance) add theirs to this list.

const pages = [
  { path: "live", label: "Live", render: renderLive },
  { path: "decisions", label: "Decisions", render: renderDecisions },
  { path: "dead-letters", label: "Dead letters", render: renderDeadLetters },
  { path: "tenants", label: "Tenants", render: renderTenants },
  { path: "segments", label: "Segments", render: renderSegments },
  { path: "agents", label: "Agents", render: renderAgents },
  { path: "anomalies", label: "Anomalies", render: renderAnomalies },
  { path: "evidence", label: "Evidence", render: renderEvidence },
  { path: "compliance", label: "Compliance", render: renderCompliance },
];

function route() {
  const [page, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  return { page: page || "live", arg: rest.map(decodeURIComponent).join("/") };
}

// Renders can overlap (signing in both sets the hash and renders; a link is followed while a
// page still loads): only the latest goes on past its awaits, and each page fills a container
// of its own, so one left behind fills nothing that is shown.
let renderCount = 0;

async function render(signInMessage) {
  const seq = ++renderCount;
  const main = document.getElementById("main");
  const nav = document.getElementById("nav");
  const who = document.getElementById("who");
  stopLive();
  if (!session.token) {
    nav.hidden = true;
    who.replaceChildren();
    renderSignIn(main, signInMessage);
    return;
  }
  if (!session.me) {
    try {
      session.me = (await api("/v1/whoami")).result;
      session.tenants = (await api("/v1/tenants")).result;
    } catch (e) {
      if (session.token && seq === renderCount) {
        main.replaceChildren(h("div", { class: "error", role: "alert" }, `Cannot reach the engine: ${e.message}`));
      }
      return;
    }
    if (seq !== renderCount) return;
  }
  const { page, arg } = route();
  const current = pages.find((p) => p.path === page) || pages[0];
  nav.hidden = false;
  nav.replaceChildren(...pages.map((p) =>
    h("a", { href: `#/${p.path}`, "aria-current": p === current ? "page" : undefined }, p.label)));
  who.replaceChildren(
    h("span", {}, `${session.me.name} · ${session.me.scopes.join(", ")}`),
    h("button", { type: "button", onclick: () => signOut() }, "Sign out"));
  document.title = `${current.label} · Portcullis`;
  const container = h("div", { class: "page" });
  main.replaceChildren(container);
  await current.render(container, arg);
}

function renderSignIn(main, why) {
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "off",
    required: true, placeholder: "pcl_…", "aria-describedby": "token-help" });
  const status = h("div", { "aria-live": "polite" });
  if (why) message(status, "error", why);
  const form = h("form", {
    onsubmit: async (e) => {
      e.preventDefault();
      session.token = input.value.trim();
      session.me = null;
      try {
        session.me = (await api("/v1/whoami", { signingIn: true })).result;
      } catch (err) {
        session.token = null;
        message(status, "error", `Not signed in: ${err.message}`);
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, session.token);
      session.me = null; // reloaded with the tenant list by render()
      location.hash = "#/live";
      render();
    },
  },
  h("label", { for: "token" }, "API token", input),
  h("p", { id: "token-help", class: "muted" },
    "Make one with: portcullis token create --name me --scope admin (or scope read:<tenant>). ",
    "It stays in this tab only."),
  h("button", { class: "primary", type: "submit" }, "Sign in"),
  status);
  main.replaceChildren(h("section", { class: "signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in to Portcullis"), form));
  input.focus();
}

function tenantSelect(id, { allowAll }) {
  const readable = session.tenants.map((t) => t.tenant_id);
  const select = h("select", { id, name: "tenant" },
    allowAll ? h("option", { value: "" }, "all tenants") : null,
    ...readable.map((t) => h("option", { value: t }, t)));
  return select;
}

// ---- live decisions -------------------------------------------------------------------------

let live = null;

// A page's periodic refresh; stopped when the page changes, as the live stream is.
let refreshTimer = null;

function stopLive() {
  if (live) {
    live.closed = true;
    live.ws.close();
    live = null;
  }
  if (refreshTimer) {
    clearInterval(refreshTimer);
    refreshTimer = null;
  }
}

function renderLive(main) {
  const admin = session.me.admin;
  const tenant = tenantSelect("live-tenant", { allowAll: admin });
  const outcome = h("select", { id: "live-outcome", name: "outcome" },
    h("option", { value: "" }, "allow and deny"), h("option", { value: "deny" }, "deny"),
    h("option", { value: "allow" }, "allow"));
  const state = h("span", { class: "status", "aria-live": "polite" });
  const notes = h("div");
  const body = h("tbody");
  const table = h("table", { "aria-label": "Live decisions" },
    h("thead", {}, h("tr", {}, ["Time", "Tenant", "Outcome", "Source", "Principal", "Action",
      "Reasons"].map((c) => h("th", { scope: "col" }, c)))), body);
  const waiting = h("p", { class: "muted" }, "Waiting for decisions… they appear here as they are made.");
  main.append(h("h1", {}, "Live decisions"),
    h("form", { class: "filters", onsubmit: (e) => e.preventDefault() },
      h("label", { for: "live-tenant" }, "Tenant", tenant),
      h("label", { for: "live-outcome" }, "Outcome", outcome), state),
    notes, table, waiting);
  if (!admin && session.tenants.length === 0) {
    message(notes, "notice", "This token may read no tenant: there is nothing to stream.");
    return;
  }
  const connect = () => {
    stopLive();
    body.replaceChildren();
    notes.replaceChildren();
    waiting.hidden = false;
    const q = query({ tenant_id: tenant.value });
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/v1/stream/decisions${q}`,
      ["portcullis", `portcullis.token.${session.token}`]);
    const me = { ws, closed: false };
    live = me;
    state.textContent = "connecting…";
    ws.onmessage = (m) => {
      let msg;
      try { msg = JSON.parse(m.data); } catch { return; }
      if (msg.type === "connected") state.textContent = "live";
      else if (msg.type === "lagged") {
        notes.prepend(h("div", { class: "notice", role: "status" },
          `${msg.missed} decisions were skipped because this page fell behind the stream. `,
          h("a", { href: "#/decisions" }, "Recent decisions"), " has every one."));
      } else if (msg.type === "decision") {
        const d = msg.data;
        const allowed = d.decision && typeof d.decision === "object" ? d.decision.allow === true : d.decision === true;
        const o = allowed ? "allow" : "deny";
        if (outcome.value && outcome.value !== o) return;
        const ev = (d.input && d.input.event) || {};
        const row = h("tr", { "data-decision-id": d.decision_id },
          h("td", { class: "mono" }, time(d.timestamp)), h("td", {}, d.tenant_id),
          h("td", {}, outcomeBadge(o)), h("td", {}, d.source),
          h("td", {}, ev.principal || ""), h("td", {}, ev.action || ""),
          h("td", {}, reasonsText(d.decision && d.decision.reasons)));
        body.prepend(row);
        waiting.hidden = true;
        while (body.children.length > LIVE_MAX_ROWS) body.lastChild.remove();
      }
    };
    ws.onclose = async (e) => {
      if (me.closed || live !== me) return;
      if (e.code === 1008) {
        // The engine ended the stream because the token no longer holds.
        signOut(e.reason || "The token was revoked or expired; sign in again.");
        return;
      }
      state.textContent = "disconnected; reconnecting…";
      try {
        await api("/v1/whoami"); // a revoked token signs out here instead of retrying forever
      } catch {
        if (!session.token) return;
      }
      setTimeout(() => { if (live === me) connect(); }, 2000);
    };
  };
  tenant.addEventListener("change", connect);
  outcome.addEventListener("change", connect);
  connect();
}

// ---- recent decisions and drill-down --------------------------------------------------------

async function renderDecisions(main, arg) {
  if (arg) return renderDecision(main, arg);
  const tenant = tenantSelect("d-tenant", { allowAll: true });
  const outcome = h("select", { id: "d-outcome" }, h("option", { value: "" }, "allow and deny"),
    h("option", { value: "deny" }, "deny"), h("option", { value: "allow" }, "allow"));
  const principal = h("input", { id: "d-principal", type: "search", placeholder: "exact" });
  const action = h("input", { id: "d-action", type: "search", placeholder: "e.g. ConsoleLogin" });
  const status = h("div", { "aria-live": "polite" });
  const body = h("tbody");
  const more = h("button", { type: "button", hidden: true }, "Load more");
  let cursor = null;
  const load = async (reset) => {
    if (reset) { body.replaceChildren(); cursor = null; }
    message(status, "", "");
    try {
      const page = await api(`/v1/decisions${query({ tenant_id: tenant.value, outcome: outcome.value,
        principal: principal.value.trim(), action: action.value.trim(), cursor, limit: 50 })}`);
      for (const d of page.result) {
        body.append(h("tr", {},
          h("td", { class: "mono" }, time(d.event_time)), h("td", {}, d.tenant_id),
          h("td", {}, outcomeBadge(d.outcome)), h("td", {}, d.principal), h("td", {}, d.action),
          h("td", {}, reasonsText(d.reasons)),
          h("td", {}, h("a", { href: `#/decisions/${encodeURIComponent(d.decision_id)}` }, "details"))));
      }
      cursor = page.next_cursor;
      more.hidden = !cursor;
      if (!body.children.length) message(status, "notice", "No decisions match.");
    } catch (e) {
      message(status, "error", e.message);
    }
  };
  more.addEventListener("click", () => load(false));
  main.append(h("h1", {}, "Recent decisions"),
    h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); load(true); } },
      h("label", { for: "d-tenant" }, "Tenant", tenant),
      h("label", { for: "d-outcome" }, "Outcome", outcome),
      h("label", { for: "d-principal" }, "Principal", principal),
      h("label", { for: "d-action" }, "Action", action),
      h("button", { class: "primary", type: "submit" }, "Filter")),
    status,
    h("table", { "aria-label": "Decisions" },
      h("thead", {}, h("tr", {}, ["Event time", "Tenant", "Outcome", "Principal", "Action", "Reasons", ""]
        .map((c) => h("th", { scope: "col" }, c)))), body),
    h("p", {}, more));
  await load(true);
}

async function renderDecision(main, id) {
  main.append(h("p", {}, h("a", { href: "#/decisions" }, "← Recent decisions")));
  let d;
  try {
    d = (await api(`/v1/decisions/${encodeURIComponent(id)}`)).result;
  } catch (e) {
    main.append(h("div", { class: "error", role: "alert" }, e.message));
    return;
  }
  const field = (k, v) => [h("dt", {}, k), h("dd", {}, v === null || v === undefined ? "—" : v)];
  main.append(h("h1", {}, "Decision ", outcomeBadge(d.outcome)),
    h("dl", { class: "fields" },
      field("Decision", d.decision_id), field("Tenant", d.tenant_id), field("Event", d.event_id),
      field("Event time", time(d.event_time)), field("Decided", time(d.decided_at)),
      field("Principal", d.principal), field("Action", d.action), field("Service", d.service),
      field("Resource", d.resource), field("Source IP", d.source_ip), field("Account", d.account),
      field("Came in over", `${d.source} (${d.kind})`), field("Rule", d.rule_path),
      field("Bundle revision", d.bundle_revision), field("Evaluation", `${d.eval_micros} µs`),
      field("Reasons", reasonsText(d.reasons) || "—")),
    h("h2", {}, "Rule result"), h("pre", { class: "mono", "aria-label": "Rule result" }, JSON.stringify(d.result, null, 2)),
    h("h2", {}, "Raw record"), h("pre", { class: "mono", "aria-label": "Raw record" }, JSON.stringify(d.raw, null, 2)));
}

// ---- dead letters ---------------------------------------------------------------------------

async function renderDeadLetters(main) {
  const tenant = tenantSelect("dl-tenant", { allowAll: true });
  const status = h("div", { "aria-live": "polite" });
  const body = h("tbody");
  const more = h("button", { type: "button", hidden: true }, "Load more");
  let cursor = null;
  const replay = async (row, id, button) => {
    button.disabled = true;
    try {
      const r = (await api("/v1/dead-letters/replay", { method: "POST", body: { ids: [id] } })).result[0];
      if (r.outcome === "stored" || r.outcome === "already_resolved") {
        row.remove();
        message(status, "notice", `Replayed ${id}: ${r.outcome === "stored" ? `${r.events} events stored` : "already resolved"}.`);
      } else {
        message(status, "error", `Replay of ${id} still fails: ${r.reason || r.outcome}`);
        button.disabled = false;
      }
    } catch (e) {
      message(status, "error", `Replay of ${id} failed: ${e.message}`);
      button.disabled = false;
    }
  };
  const load = async (reset) => {
    if (reset) { body.replaceChildren(); cursor = null; }
    try {
      const page = await api(`/v1/dead-letters${query({ tenant_id: tenant.value, cursor, limit: 50 })}`);
      for (const d of page.result) {
        const row = h("tr", { "data-dead-letter-id": d.dead_letter_id });
        const actions = h("td", {});
        if (mayAdminister(d.tenant_id)) {
          const b = h("button", { type: "button", "aria-label": `Replay ${d.dead_letter_id}` }, "Replay");
          b.addEventListener("click", () => replay(row, d.dead_letter_id, b));
          actions.append(b);
        }
        row.append(h("td", { class: "mono" }, time(d.failed_at)), h("td", {}, d.tenant_id || "—"),
          h("td", { class: "wrap" }, `${d.source}: ${d.topic}`), h("td", { class: "reason" }, d.reason,
            d.last_replay_error ? h("div", { class: "muted" }, `last replay: ${d.last_replay_error}`) : null),
          h("td", { class: "mono payload" }, d.payload_preview.slice(0, 300)), actions);
        body.append(row);
      }
      cursor = page.next_cursor;
      more.hidden = !cursor;
      if (!body.children.length) message(status, "notice", "No open dead letters.");
    } catch (e) {
      message(status, "error", e.message);
    }
  };
  more.addEventListener("click", () => load(false));
  tenant.addEventListener("change", () => load(true));
  main.append(h("h1", {}, "Dead letters"),
    h("p", { class: "muted" }, "Input that could not be decoded or judged, with why. Fix the cause (map the account, ",
      "register the tenant, repair the bundle), then replay."),
    h("form", { class: "filters", onsubmit: (e) => e.preventDefault() },
      h("label", { for: "dl-tenant" }, "Tenant", tenant)),
    status,
    h("table", { "aria-label": "Dead letters" },
      h("thead", {}, h("tr", {}, ["Failed", "Tenant", "From", "Reason", "Payload", ""]
        .map((c) => h("th", { scope: "col" }, c)))), body),
    h("p", {}, more));
  await load(true);
}

// ---- tenants and bundle health --------------------------------------------------------------

async function renderTenants(main) {
  let tenants;
  try {
    tenants = (await api("/v1/tenants")).result;
    session.tenants = tenants;
  } catch (e) {
    main.append(h("div", { class: "error", role: "alert" }, e.message));
    return;
  }
  main.append(h("h1", {}, "Tenants and bundles"),
    h("table", { "aria-label": "Tenants" },
      h("thead", {}, h("tr", {}, ["Tenant", "Name", "AWS accounts", "Bundle revision", "Health", "Last error"]
        .map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, ...tenants.map((t) => {
        const b = t.bundle;
        return h("tr", { "data-tenant": t.tenant_id },
          h("td", {}, t.tenant_id, t.registered ? null : h("div", { class: "muted" }, "not registered")),
          h("td", {}, t.display_name || ""), h("td", { class: "mono" }, t.accounts.join(", ")),
          h("td", { class: "mono" }, b ? b.revision || "—" : "no bundle"),
          h("td", {}, b ? (b.healthy ? "healthy" : h("span", { class: "outcome deny" }, "refused newer bundle")) : "—"),
          h("td", {}, b && b.last_error ? `${b.last_error} (${time(b.last_error_at)})` : ""));
      }))));
}

// ---- segment policy for edge agents ---------------------------------------------------------

async function renderSegments(main, arg) {
  if (arg) return renderSegment(main, arg);
  const tenant = tenantSelect("seg-tenant", { allowAll: true });
  const status = h("div", { "aria-live": "polite" });
  const body = h("tbody");
  const load = async () => {
    body.replaceChildren();
    try {
      const rows = (await api(`/v1/segments${query({ tenant_id: tenant.value })}`)).result;
      for (const s of rows) {
        const key = `${s.tenant_id}/${s.segment_id}`;
        body.append(h("tr", { "data-segment": key },
          h("td", {}, s.tenant_id), h("td", {}, h("a", { href: `#/segments/${key}` }, s.segment_id)),
          h("td", { class: "num" }, s.latest_version),
          h("td", { class: "mono" }, s.latest_version ? (s.latest_sent_at ? time(s.latest_sent_at) : "not sent yet") : "—"),
          h("td", {}, s.groups.join(", ")), h("td", { class: "num" }, s.agents),
          h("td", { class: "num" }, s.agents_behind)));
      }
      message(status, "notice", rows.length ? "" : "No segments yet: add a rule or publish a version.");
    } catch (e) {
      message(status, "error", e.message);
    }
  };
  tenant.addEventListener("change", load);
  const newKey = h("input", { id: "seg-new", placeholder: "tenant/segment", pattern: "[a-z][a-z0-9_]*/[a-z][a-z0-9_]*" });
  main.append(h("h1", {}, "Segments"),
    h("p", { class: "muted" }, "Each segment's policy goes to the agents of its groups, every version in order, signed by the engine."),
    h("form", { class: "filters", onsubmit: (e) => {
      e.preventDefault();
      if (newKey.value) location.hash = `#/segments/${newKey.value}`;
    } },
    h("label", { for: "seg-tenant" }, "Tenant", tenant),
    h("label", { for: "seg-new" }, "Open or create", newKey),
    h("button", { type: "submit" }, "Open")),
    status,
    h("table", { "aria-label": "Segments" },
      h("thead", {}, h("tr", {}, ["Tenant", "Segment", "Latest", "Sent", "Groups", "Agents", "Behind"]
        .map((c) => h("th", { scope: "col" }, c)))), body));
  await load();
}

async function renderSegment(main, key) {
  const [tenant, segment] = key.split("/");
  const base = `/v1/segments/${encodeURIComponent(tenant)}/${encodeURIComponent(segment)}/versions`;
  const status = h("div", { "aria-live": "polite" });
  const body = h("tbody");
  const detail = h("div", {});
  const show = async (version) => {
    try {
      const v = (await api(`${base}/${version}`)).result;
      detail.replaceChildren(h("h2", {}, `Version ${v.version}`),
        ...Object.entries(v.modules).map(([name, src]) =>
          h("div", {}, h("h3", { class: "mono" }, name), h("pre", {}, src))),
        h("h3", {}, "Data"), h("pre", {}, JSON.stringify(v.data, null, 2)));
      return v;
    } catch (e) {
      message(status, "error", e.message);
      return null;
    }
  };
  const load = async () => {
    body.replaceChildren();
    try {
      const rows = (await api(base)).result;
      for (const v of rows) {
        const open = h("button", { type: "button", "aria-label": `Show version ${v.version}` }, "Show");
        open.addEventListener("click", () => show(v.version));
        body.append(h("tr", { "data-version": v.version },
          h("td", { class: "num" }, v.version), h("td", { class: "mono" }, time(v.published_at)),
          h("td", {}, v.published_by), h("td", { class: "mono" }, v.sent_at ? time(v.sent_at) : "not sent yet"),
          h("td", { class: "mono" }, v.key_id), h("td", { class: "mono" }, v.digest.slice(0, 19)), h("td", {}, open)));
      }
      return rows;
    } catch (e) {
      message(status, "error", e.message);
      return [];
    }
  };
  main.append(h("p", {}, h("a", { href: "#/segments" }, "← Segments")),
    h("h1", {}, `Segment ${tenant}/${segment}`), status,
    h("table", { "aria-label": "Versions" },
      h("thead", {}, h("tr", {}, ["Version", "Published", "By", "Sent", "Key", "Digest", ""]
        .map((c) => h("th", { scope: "col" }, c)))), body));
  const rows = await load();
  const latest = rows.length ? await show(rows[0].version) : null;
  if (mayAdminister(tenant)) {
    const file = h("input", { id: "pub-file", value: latest ? Object.keys(latest.modules)[0] : `${segment}.rego`, required: true });
    const source = h("textarea", { id: "pub-source", rows: 10, required: true, spellcheck: "false" },
      latest ? Object.values(latest.modules)[0] : `package segments.${segment}\n\ndefault allow := false\n`);
    const data = h("textarea", { id: "pub-data", rows: 4, spellcheck: "false" },
      latest ? JSON.stringify(latest.data, null, 2) : "{}");
    const form = h("form", { class: "publish", onsubmit: async (e) => {
      e.preventDefault();
      let parsed;
      try { parsed = JSON.parse(data.value || "{}"); } catch (err) {
        message(status, "error", `Data is not JSON: ${err.message}`);
        return;
      }
      const modules = latest ? { ...latest.modules } : {};
      modules[file.value] = source.value;
      try {
        const answer = await api(base, { method: "POST", body: { modules, data: parsed } });
        const v = answer.result;
        message(status, "notice", answer.unchanged
          ? `Unchanged: version ${v.version} already holds this policy.`
          : `Published version ${v.version}; the engine sends it to the segment's agents.`);
        await load();
      } catch (err) {
        message(status, "error", `Not published: ${err.message}`);
      }
    } },
    h("h2", {}, "Publish a new version"),
    h("label", { for: "pub-file" }, "Module file", file),
    h("label", { for: "pub-source" }, "Rego", source),
    h("label", { for: "pub-data" }, "Data (JSON object)", data),
    h("button", { class: "primary", type: "submit" }, "Publish"));
    main.append(form);
  }
  main.append(detail);
}

async function renderAgents(main) {
  const tenant = tenantSelect("ag-tenant", { allowAll: true });
  const behind = h("input", { id: "ag-behind", type: "checkbox" });
  const status = h("div", { "aria-live": "polite" });
  const body = h("tbody");
  const load = async () => {
    body.replaceChildren();
    try {
      const rows = (await api(`/v1/agents${query({ tenant_id: tenant.value, behind: behind.checked ? "true" : "" })}`)).result;
      for (const a of rows) {
        body.append(h("tr", { "data-agent": `${a.tenant_id}/${a.agent_id}` },
          h("td", {}, a.tenant_id), h("td", { class: "mono" }, a.agent_id),
          h("td", {}, a.online ? "online" : "offline"),
          h("td", { title: a.enrolled ? "broker credentials; groups fixed at enrollment" : "anonymous; groups as the agent says" },
            a.enrolled ? "enrolled" : "self-declared"),
          h("td", {}, a.groups.join(", ")),
          h("td", {}, a.segments.map((s) => `${s.segment} v${s.applied}${s.applied < s.latest ? ` (latest v${s.latest})` : ""}`).join(", ")),
          h("td", { class: "mono" }, time(a.last_seen_at))));
      }
      message(status, "notice", rows.length ? "" : "No agents have connected yet.");
    } catch (e) {
      message(status, "error", e.message);
    }
  };
  tenant.addEventListener("change", load);
  behind.addEventListener("change", load);
  main.append(h("h1", {}, "Agents"),
    h("form", { class: "filters", onsubmit: (e) => e.preventDefault() },
      h("label", { for: "ag-tenant" }, "Tenant", tenant),
      h("label", { for: "ag-behind" }, behind, "Only agents behind")),
    status,
    h("table", { "aria-label": "Agents" },
      h("thead", {}, h("tr", {}, ["Tenant", "Agent", "State", "Identity", "Groups", "Applied", "Last seen"]
        .map((c) => h("th", { scope: "col" }, c)))), body));
  await load();
}

// ---- anomaly models: training, anomalies, trust -------------------------------------------

const TRUST_LEVELS = { trusted: "allow", watch: "watch", low: "deny", untrusted: "deny" };

function unusualText(unusual) {
  return (unusual || []).map((u) => {
    const value = typeof u.value === "string" ? u.value : String(u.value);
    const share = typeof u.training_share === "number"
      ? ` (${(100 * u.training_share).toFixed(1)} % of training)` : "";
    return `${u.feature} = ${value}${share}`;
  }).join("; ");
}

async function renderAnomalies(main) {
  const tenant = tenantSelect("an-tenant", { allowAll: true });
  const status = h("div", { "aria-live": "polite" });
  const lines = h("tbody");
  const anomalies = h("tbody");
  const trust = h("tbody");
  const models = h("tbody");
  const act = async (t, scope, verb) => {
    const base = `/v1/anomaly/${encodeURIComponent(t)}/${encodeURIComponent(scope)}/training`;
    try {
      const answer = await api(verb === "start" ? base : `${base}/${verb}`, { method: "POST", body: {} });
      const r = answer.result;
      if (verb === "start") message(status, "notice", `Training ${t}/${scope}: collecting events.`);
      else if (verb === "close") message(status, "notice", `Closed ${t}/${scope}'s session without training.`);
      else if (r.model) message(status, "notice", `Trained ${t}/${scope} model version ${r.model.version} on ${r.model.summary.rows} events.`);
      else message(status, "error", `No model was trained: ${r.session.failure || "unknown reason"}`);
    } catch (e) {
      message(status, "error", `${verb} ${t}/${scope}: ${e.message}`);
    }
    await load();
  };
  const load = async () => {
    const q = query({ tenant_id: tenant.value });
    let settings, sessions, versions, found, subjects;
    try {
      [settings, sessions, versions, found, subjects] = await Promise.all([
        api(`/v1/anomaly-settings${q}`), api(`/v1/training-sessions${query({ tenant_id: tenant.value, limit: 200 })}`),
        api(`/v1/anomaly-models${q}`), api(`/v1/anomalies${query({ tenant_id: tenant.value, limit: 100 })}`),
        api(`/v1/trust-scores${query({ tenant_id: tenant.value, limit: 100 })}`),
      ]).then((answers) => answers.map((a) => a.result));
    } catch (e) {
      message(status, "error", e.message);
      return;
    }
    lines.replaceChildren(...settings.map((line) => {
      const key = `${line.tenant_id}/${line.scope}`;
      const active = sessions.find((s) => s.state === "active" && s.tenant_id === line.tenant_id && s.scope === line.scope);
      const model = versions.find((m) => m.tenant_id === line.tenant_id && m.scope === line.scope);
      const buttons = [];
      if (mayAdminister(line.tenant_id)) {
        if (active) {
          buttons.push(h("button", { type: "button", class: "primary", onclick: () => act(line.tenant_id, line.scope, "stop") }, "Stop and train"),
            h("button", { type: "button", onclick: () => act(line.tenant_id, line.scope, "close") }, "Close"));
        } else {
          buttons.push(h("button", { type: "button", onclick: () => act(line.tenant_id, line.scope, "start") }, "Start training"));
        }
      }
      return h("tr", { "data-line": key },
        h("td", {}, line.tenant_id), h("td", {}, line.scope),
        h("td", {}, active ? `training: ${active.rows_collected} events collected since ${time(active.started_at)}`
          : (model ? "scoring" : "no model")),
        h("td", { class: "num" }, model ? `v${model.version}` : "—"),
        h("td", { class: "num" }, line.threshold),
        h("td", { class: "num" }, `${line.trust_half_life_secs} s`),
        h("td", {}, h("div", { class: "row-actions" }, buttons)));
    }));
    anomalies.replaceChildren(...found.map((a) => h("tr", { "data-anomaly": a.event_id },
      h("td", { class: "mono" }, time(a.event_time)), h("td", {}, `${a.tenant_id}/${a.scope}`),
      h("td", { class: "wrap" }, a.subject), h("td", {}, a.action),
      h("td", { class: "num" }, a.score.toFixed(3)),
      h("td", { class: "reason" }, unusualText(a.unusual)),
      h("td", { class: "num" }, a.trust),
      h("td", {}, a.outcome ? outcomeBadge(a.outcome) : "—"))));
    trust.replaceChildren(...subjects.map((t) => h("tr", { "data-subject": `${t.subject_kind}/${t.subject}` },
      h("td", {}, t.tenant_id), h("td", {}, t.subject_kind), h("td", { class: "wrap" }, t.subject),
      h("td", { class: "num" }, t.trust),
      h("td", {}, h("span", { class: `outcome ${TRUST_LEVELS[t.level] || ""}` }, t.level)),
      h("td", { class: "num" }, t.anomalies_24h), h("td", { class: "mono" }, time(t.as_of)))));
    models.replaceChildren(...versions.map((m) => h("tr", { "data-model": `${m.tenant_id}/${m.scope}/${m.version}` },
      h("td", {}, `${m.tenant_id}/${m.scope}`), h("td", { class: "num" }, `v${m.version}`),
      h("td", { class: "mono" }, time(m.trained_at)), h("td", {}, m.trained_by),
      h("td", { class: "num" }, m.summary.rows),
      h("td", { class: "num" }, `${Number(m.summary.score_p50).toFixed(3)} / ${Number(m.summary.score_p99).toFixed(3)}`))));
    if (!found.length && !versions.length && !sessions.some((s) => s.state === "active")) {
      message(status, "notice", "No model yet: start a training session on a usual stretch of events, then stop it to train.");
    }
  };
  tenant.addEventListener("change", load);
  const table = (label, columns, body) => h("table", { "aria-label": label },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))), body);
  const heading = h("h1", {}, "Anomalies");
  main.append(heading,
    h("p", { class: "muted" }, "Each tenant learns its usual CloudTrail and device activity in a training session; every later event is scored before policy. Trust (0–100) falls with anomalies and comes back with time."),
    h("form", { class: "filters", onsubmit: (e) => e.preventDefault() },
      h("label", { for: "an-tenant" }, "Tenant", tenant)),
    status,
    h("h2", {}, "Model lines"),
    table("Model lines", ["Tenant", "Scope", "Mode", "Model", "Threshold", "Trust half-life", ""], lines),
    h("h2", {}, "Recent anomalies"),
    table("Recent anomalies", ["Event time", "Line", "Subject", "Action", "Score", "What was unusual", "Trust after", "Decision"], anomalies),
    h("h2", {}, "Trust"),
    h("p", { class: "muted" }, "Principals and agents that lost trust, least trusted first; any other has full trust (100)."),
    table("Trust", ["Tenant", "Kind", "Subject", "Trust", "Level", "Anomalies (24 h)", "Last counted"], trust),
    h("h2", {}, "Model versions"),
    table("Model versions", ["Line", "Version", "Trained", "By", "Events", "Score p50 / p99"], models));
  // Refreshed while this page is shown: a timer that outlives it (the page was left while it
  // loaded) stops itself, and a refresh waits for the one before.
  let loading = false;
  const refresh = async () => {
    if (loading) return;
    loading = true;
    try { await load(); } finally { loading = false; }
  };
  const timer = setInterval(() => {
    if (!heading.isConnected) clearInterval(timer);
    else refresh();
  }, 5000);
  refreshTimer = timer;
  await refresh();
}

// ---- evidence: approvals, receipts, checkpoints --------------------------------------------

function fromBase64(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

async function nodeHash(left, right) {
  const bytes = new Uint8Array(1 + left.length + right.length);
  bytes[0] = 1;
  bytes.set(left, 1);
  bytes.set(right, 1 + left.length);
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

// RFC 9162, 2.1.3.2: does the audit path lead from the leaf hash to the checkpoint's root?
// Checked here, in the browser, from what the API sent; `portcullis verify` checks a whole
// bundle offline, signatures included.
async function proofLeadsToRoot(proof) {
  if (!proof.checkpoint) return null;
  let fn = BigInt(proof.leaf_index);
  let sn = BigInt(proof.checkpoint.size) - 1n;
  if (fn > sn) return false;
  let r = fromBase64(proof.leaf_hash);
  for (const step of proof.inclusion_proof) {
    if (sn === 0n) return false;
    const p = fromBase64(step);
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  const root = fromBase64(proof.checkpoint.root);
  return sn === 0n && r.length === root.length && r.every((b, i) => b === root[i]);
}

// ρ over time as an SVG line, with the thresholds (0.6 require approval, 0.9 read-only)
// drawn across; ρ above the top is drawn at the top. Built with DOM calls: no inline markup.
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

function rhoChart(samples, label) {
  const width = 360, height = 90, top = 1.5;
  const y = (rho) => height - (Math.min(rho === null ? top : rho, top) / top) * height;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": label, class: "rho-chart" });
  for (const [at, cls] of [[0.6, "approval"], [0.9, "read-only"]]) {
    chart.append(svg("line", { x1: 0, x2: width, y1: y(at), y2: y(at), class: `threshold ${cls}` }));
  }
  if (samples.length) {
    const t0 = new Date(samples[0].at).getTime();
    const span = Math.max(1, new Date(samples[samples.length - 1].at).getTime() - t0);
    const points = samples.map((s) =>
      `${((new Date(s.at).getTime() - t0) / span * width).toFixed(1)},${y(s.rho).toFixed(1)}`);
    chart.append(svg("polyline", { points: points.join(" "), class: "rho" }));
  }
  chart.append(svg("title", {}, label));
  return chart;
}

const LEVEL_BADGE = { permissive: "allow", require_approval: "require_approval", read_only: "deny" };

async function loadProtection(tenantId, unitsBody, changesBody, status) {
  let units, changes;
  try {
    [units, changes] = await Promise.all([
      api(`/v1/protection${query({ tenant_id: tenantId })}`),
      api(`/v1/protection-transitions${query({ tenant_id: tenantId, limit: 20 })}`),
    ]).then((answers) => answers.map((a) => a.result));
  } catch (e) {
    message(status, "error", e.message);
    return;
  }
  const since = new Date(Date.now() - 3600 * 1000).toISOString();
  const charts = await Promise.all(units.map((u) =>
    api(`/v1/protection/${encodeURIComponent(u.tenant_id)}/${encodeURIComponent(u.unit)}/samples${query({ since })}`)
      .then((a) => a.result).catch(() => [])));
  unitsBody.replaceChildren(...units.map((u, i) => h("tr", { "data-unit": `${u.tenant_id}/${u.unit}` },
    h("td", {}, u.tenant_id), h("td", {}, u.unit), h("td", { class: "mono wrap" }, u.selector),
    h("td", {}, h("span", { class: `outcome ${LEVEL_BADGE[u.level] || ""}` }, u.level),
      u.held_level ? h("div", { class: "muted", "data-held": u.held_level },
        `held by ${(u.signals || []).filter((s) => s.severity === "high" || s.severity === "critical")
          .map((s) => `${s.source}: ${s.kind} (${s.severity}) until ${time(s.expires_at)}`).join("; ") || "a signal"}`) : ""),
    h("td", { class: "num" }, u.rho === null ? "∞" : u.rho.toFixed(2)),
    h("td", { class: "num" }, `${u.lambda.toFixed(1)} / ${u.capacity_per_sec}`),
    h("td", {}, rhoChart(charts[i], `rho of ${u.tenant_id}/${u.unit} over the last hour`)))));
  changesBody.replaceChildren(...changes.map((c) => h("tr", {},
    h("td", { class: "mono" }, time(c.at)), h("td", {}, `${c.tenant_id}/${c.unit}`),
    h("td", {}, `${c.from_level} → ${c.to_level}`),
    h("td", { class: "num" }, c.rho === null ? "∞" : c.rho.toFixed(2)))));
  message(status, "notice", units.length ? "" : "No protection units: every decision is permissive. Add one with portcullis protection set.");
}

const SEVERITY_BADGE = { low: "", medium: "watch", high: "require_approval", critical: "deny" };

async function loadSignals(tenantId, body, status) {
  let rows;
  try {
    rows = (await api(`/v1/signals${query({ tenant_id: tenantId, limit: 100 })}`)).result;
  } catch (e) {
    message(status, "error", e.message);
    return;
  }
  body.replaceChildren(...rows.map((r) => h("tr", { "data-signal": r.signal_key },
    h("td", { class: "mono" }, time(r.received_at)), h("td", {}, r.tenant_id),
    h("td", { class: "mono wrap" }, `${r.subject_kind}: ${r.subject}`), h("td", {}, r.kind),
    h("td", {}, h("span", { class: `outcome ${SEVERITY_BADGE[r.severity] || ""}` }, r.severity)),
    h("td", {}, r.source), h("td", { class: "mono" }, time(r.expires_at)))));
  message(status, "notice", rows.length ? "" : "No signals last now. Tools send them over Kafka or POST /v1/signals.");
}

const RECEIPT_STATUS = { verified: "allow", pending: "watch", failed: "deny" };

async function renderEvidence(main) {
  const heading = h("h1", {}, "Evidence");
  // Approval queue.
  const qTenant = tenantSelect("ap-tenant", { allowAll: true });
  const qStatus = h("select", { id: "ap-status" },
    ...["pending", "approved", "denied", "expired", ""].map((s) => h("option", { value: s }, s || "any")));
  const note = h("input", { id: "ap-note", type: "text", maxlength: "1000", placeholder: "why (kept in the receipt)" });
  const qMessage = h("div", { "aria-live": "polite" });
  const qEmpty = h("p", { class: "muted" });
  const queue = h("tbody");
  const answer = async (row, verb) => {
    try {
      const body = note.value.trim() ? { note: note.value.trim() } : {};
      const done = (await api(`/v1/approvals/${encodeURIComponent(row.approval_id)}/${verb}`, { method: "POST", body })).result;
      message(qMessage, "notice", `${done.status === "approved" ? "Approved" : "Denied"}: ${done.principal || "nobody signed in"} · ${done.resource}`);
      note.value = "";
    } catch (e) {
      message(qMessage, "error", `${verb}: ${e.message}`);
    }
    await loadQueue();
  };
  const loadQueue = async () => {
    let rows;
    try {
      rows = (await api(`/v1/approvals${query({ tenant_id: qTenant.value, status: qStatus.value, limit: 100 })}`)).result;
    } catch (e) {
      message(qMessage, "error", e.message);
      return;
    }
    queue.replaceChildren(...rows.map((r) => {
      const pending = r.status === "pending" && new Date(r.expires_at) > new Date();
      const actions = pending && mayApprove(r.tenant_id)
        ? [h("button", { type: "button", class: "primary", onclick: () => answer(r, "approve") }, "Approve"),
          h("button", { type: "button", onclick: () => answer(r, "deny") }, "Deny")]
        : [];
      const badge = { approved: "allow", denied: "deny", expired: "deny", pending: "watch" }[r.status];
      return h("tr", { "data-approval": r.approval_id },
        h("td", { class: "mono" }, time(r.requested_at)), h("td", {}, r.tenant_id),
        h("td", { class: "wrap" }, r.principal || "—", r.agent_id ? h("div", { class: "muted" }, `on agent ${r.agent_id}`) : ""),
        h("td", { class: "wrap" }, r.source === "agent" ? `${r.action} ${r.resource}` : r.resource),
        h("td", { class: "reason" }, reasonsText(r.reasons)),
        h("td", {}, h("span", { class: `outcome ${badge}` }, r.status)),
        h("td", { class: "mono" }, r.status === "pending" ? `expires ${time(r.expires_at)}` : time(r.answered_at)),
        h("td", { class: "wrap" }, [r.answered_by, r.note].filter(Boolean).join(": ")),
        h("td", {}, h("div", { class: "row-actions" }, actions)));
    }));
    qEmpty.textContent = rows.length ? "" : "No approval requests here.";
  };
  qTenant.addEventListener("change", loadQueue);
  qStatus.addEventListener("change", loadQueue);

  // Receipt lookup.
  const rTenant = tenantSelect("rc-tenant", { allowAll: false });
  const rDecision = h("input", { id: "rc-decision", type: "search", placeholder: "decision id (UUID)", size: "38" });
  const receiptOut = h("div", { "aria-live": "polite" });
  const lookUp = async (e) => {
    e.preventDefault();
    receiptOut.replaceChildren();
    let proof;
    try {
      proof = (await api(`/v1/receipts${query({ tenant_id: rTenant.value, decision_id: rDecision.value.trim() })}`)).result;
    } catch (err) {
      message(receiptOut, "error", err.message);
      return;
    }
    const here = await proofLeadsToRoot(proof);
    const r = proof.receipt;
    const field = (k, v) => [h("dt", {}, k), h("dd", {}, v)];
    receiptOut.replaceChildren(
      h("p", { id: "rc-status" }, h("span", { class: `outcome ${RECEIPT_STATUS[proof.status] || ""}` }, proof.status),
        " ", proof.problem || (proof.status === "pending"
          ? "not yet under a signed checkpoint (within seconds)"
          : `leaf ${proof.leaf_index} of ${proof.checkpoint.size}, under the checkpoint signed by ${proof.checkpoint.signed_by} at ${time(proof.checkpoint.signed_at)}`)),
      h("p", { id: "rc-browser", class: "muted" }, here === null ? "" : here
        ? "Checked in this browser: the inclusion proof leads from this receipt's leaf hash to the checkpoint's root."
        : "Checked in this browser: the inclusion proof does NOT lead to the checkpoint's root."),
      h("dl", { class: "fields" },
        field("kind", r.kind), field("outcome", outcomeBadge(r.outcome)), field("principal", r.principal || "—"),
        field("action", r.action || "—"), field("subject", r.subject), field("reasons", reasonsText(r.reasons)),
        field("rule", r.rule), field("policy", `${r.policy_revision} (${r.policy_digest})`),
        field("input digest", r.input_digest), field("decided at", time(r.decided_at)),
        field("leaf hash", h("span", { class: "mono" }, proof.leaf_hash))),
      h("p", { class: "muted" }, "For a third party: portcullis evidence export, then portcullis verify (docs/evidence.md)."));
  };

  // Checkpoint history.
  const cTenant = tenantSelect("cp-tenant", { allowAll: true });
  const checkpoints = h("tbody");
  const cMessage = h("div", { "aria-live": "polite" });
  const loadCheckpoints = async () => {
    let rows;
    try {
      rows = (await api(`/v1/checkpoints${query({ tenant_id: cTenant.value, limit: 50 })}`)).result;
    } catch (e) {
      message(cMessage, "error", e.message);
      return;
    }
    message(cMessage, "notice", rows.length ? "" : "No signed checkpoints yet.");
    checkpoints.replaceChildren(...rows.map((c) => h("tr", { "data-checkpoint": `${c.tenant}/${c.size}` },
      h("td", { class: "mono" }, time(c.signed_at)), h("td", {}, c.tenant), h("td", { class: "num" }, c.size),
      h("td", { class: "mono wrap" }, c.root), h("td", {}, c.signed_by))));
  };
  cTenant.addEventListener("change", loadCheckpoints);

  // Protection levels.
  const pTenant = tenantSelect("pr-tenant", { allowAll: true });
  const pUnits = h("tbody");
  const pChanges = h("tbody");
  const pMessage = h("div", { "aria-live": "polite" });
  const loadUnits = () => loadProtection(pTenant.value, pUnits, pChanges, pMessage);
  pTenant.addEventListener("change", loadUnits);

  // Trust signals that last.
  const sTenant = tenantSelect("sg-tenant", { allowAll: true });
  const sRows = h("tbody");
  const sMessage = h("div", { "aria-live": "polite" });
  const loadSignalRows = () => loadSignals(sTenant.value, sRows, sMessage);
  sTenant.addEventListener("change", loadSignalRows);

  const table = (label, columns, body) => h("table", { "aria-label": label },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))), body);
  main.append(heading,
    h("p", { class: "muted" }, "Every decision leaves a receipt in its tenant's append-only log, sealed under signed checkpoints. Some requests wait for an approver; protection tightens as a unit's load rises."),
    h("h2", {}, "Approval queue"),
    h("form", { class: "filters", onsubmit: (e) => e.preventDefault() },
      h("label", { for: "ap-tenant" }, "Tenant", qTenant), h("label", { for: "ap-status" }, "Status", qStatus),
      h("label", { for: "ap-note" }, "Note for the next answer", note)),
    qMessage,
    table("Approval queue", ["Requested", "Tenant", "Principal", "Request", "Why", "Status", "When", "Answered by", ""], queue),
    qEmpty,
    h("h2", {}, "Protection levels"),
    h("p", { class: "muted" }, "Each unit's load ρ = arrivals / capacity: from 0.6 writes need approval, from 0.9 the unit is read-only; below 0.5 it relaxes a step at a time."),
    h("form", { class: "filters", onsubmit: (e) => e.preventDefault() }, h("label", { for: "pr-tenant" }, "Tenant", pTenant)),
    pMessage,
    table("Protection units", ["Tenant", "Unit", "Selector", "Level", "ρ", "λ / μ per s", "ρ, last hour"], pUnits),
    table("Protection changes", ["When", "Unit", "Change", "ρ"], pChanges),
    h("h2", {}, "Trust signals"),
    h("p", { class: "muted" }, "What other security tools say, while it lasts: about a principal or an agent it lowers trust; a high or critical one about a unit holds its protection at require_approval or read_only."),
    h("form", { class: "filters", onsubmit: (e) => e.preventDefault() }, h("label", { for: "sg-tenant" }, "Tenant", sTenant)),
    sMessage,
    table("Trust signals", ["Received", "Tenant", "About", "Kind", "Severity", "Source", "Until"], sRows),
    h("h2", {}, "Receipt"),
    h("form", { class: "filters", onsubmit: lookUp },
      h("label", { for: "rc-tenant" }, "Tenant", rTenant), h("label", { for: "rc-decision" }, "Decision", rDecision),
      h("button", { class: "primary", type: "submit" }, "Look up")),
    receiptOut,
    h("h2", {}, "Checkpoints"),
    h("form", { class: "filters", onsubmit: (e) => e.preventDefault() }, h("label", { for: "cp-tenant" }, "Tenant", cTenant)),
    cMessage,
    table("Checkpoints", ["Signed", "Tenant", "Size", "Root", "Key"], checkpoints));
  const refresh = async () => { await Promise.all([loadQueue(), loadCheckpoints(), loadUnits(), loadSignalRows()]); };
  let loading = false;
  const timer = setInterval(async () => {
    if (!heading.isConnected) { clearInterval(timer); return; }
    if (loading) return;
    loading = true;
    try { await refresh(); } finally { loading = false; }
  }, 5000);
  refreshTimer = timer;
  await refresh();
}

// ---- compliance: violations the packs' controls opened, and their lifecycle ------------------

// What a person may do next from each status (docs/compliance.md); suppressing asks for a
// reason and an end.
const NEXT_STATUS = {
  open: ["acknowledged", "remediating", "resolved", "suppressed"],
  acknowledged: ["remediating", "resolved", "suppressed", "open"],
  remediating: ["resolved", "acknowledged", "suppressed"],
  resolved: ["open"],
  suppressed: ["open", "resolved"],
};
const STATUS_VERB = { acknowledged: "Acknowledge", remediating: "Remediating", resolved: "Resolve",
  suppressed: "Suppress", open: "Re-open" };
const REMEDIATION_BADGE = { pending: "watch", sent: "watch", succeeded: "allow", failed: "deny", cancelled: "" };
const STATUS_BADGE = { open: "deny", acknowledged: "watch", remediating: "watch", resolved: "allow", suppressed: "" };

async function renderCompliance(main) {
  const heading = h("h1", {}, "Compliance");
  const vTenant = tenantSelect("cv-tenant", { allowAll: true });
  const vStatus = h("select", { id: "cv-status" },
    ...[["active", "active"], ["", "any"], ...Object.keys(NEXT_STATUS).map((s) => [s, s])]
      .map(([v, l]) => h("option", { value: v }, l)));
  const vSeverity = h("select", { id: "cv-severity" },
    ...["", "critical", "high", "medium", "low"].map((s) => h("option", { value: s }, s || "any")));
  const reason = h("input", { id: "cv-reason", type: "text", maxlength: "1000", placeholder: "why (kept in its history)" });
  const until = h("input", { id: "cv-until", type: "date", "aria-describedby": "cv-until-help" });
  const vMessage = h("div", { "aria-live": "polite" });
  const summary = h("div", { class: "summary", "aria-live": "polite" });
  const rowsBody = h("tbody");
  const empty = h("p", { class: "muted" });
  const detail = h("div", { id: "cv-detail", "aria-live": "polite" });

  const change = async (v, status) => {
    const body = { status };
    if (reason.value.trim()) body.reason = reason.value.trim();
    if (status === "suppressed") {
      if (!until.value || !body.reason) {
        message(vMessage, "error", "To suppress, give a reason and the date it ends.");
        return;
      }
      body.until = new Date(`${until.value}T00:00:00Z`).toISOString();
    }
    try {
      const done = (await api(`/v1/compliance/violations/${encodeURIComponent(v.violation_id)}/status`, { method: "POST", body })).result;
      message(vMessage, "notice", `${done.control_id} on ${done.resource_id}: ${done.status}`);
      reason.value = "";
    } catch (e) {
      message(vMessage, "error", `${STATUS_VERB[status]}: ${e.message}`);
    }
    await load();
  };

  const showDetail = async (v) => {
    let one;
    try {
      one = (await api(`/v1/compliance/violations/${encodeURIComponent(v.violation_id)}`)).result;
    } catch (e) {
      message(detail, "error", e.message);
      return;
    }
    detail.replaceChildren(
      h("h2", {}, `${v.pack} ${v.control_id}: ${v.title}`),
      h("p", { class: "muted" }, `${v.resource_type} ${v.resource_id} · seen ${v.occurrences} time(s) since ${time(v.first_seen)}`,
        v.times_reopened ? ` · re-opened ${v.times_reopened} time(s)` : ""),
      h("table", { "aria-label": "Evidence" },
        h("thead", {}, h("tr", {}, ["Event time", "Event", "Principal", "Action", "Call"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, ...one.evidence.map((e) => h("tr", { "data-evidence": e.event_id },
          h("td", { class: "mono" }, time(e.event_time)), h("td", { class: "mono wrap" }, e.event_id),
          h("td", { class: "wrap" }, e.principal), h("td", {}, e.action),
          h("td", {}, e.succeeded ? "succeeded" : "failed"))))),
      h("table", { "aria-label": "History" },
        h("thead", {}, h("tr", {}, ["When", "Status", "By", "Why"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, ...one.history.map((e) => h("tr", {},
          h("td", { class: "mono" }, time(e.at)), h("td", {}, e.status), h("td", {}, e.changed_by),
          h("td", { class: "wrap" }, e.reason || ""))))),
      ...remediationSection(one));
  };

  // How the control says to put it right, the commands sent for it and what executors said,
  // and, while none waits for a result, asking for one again (after a dry run, say).
  const remediationSection = (one) => {
    const v = one.violation;
    const plan = one.remediation;
    const sends = plan && (plan.strategy === "automatic" || plan.strategy === "scheduled") && plan.action;
    const waiting = one.remediations.some((a) => a.open_period === v.times_reopened
      && (a.status === "pending" || a.status === "sent"));
    const active = ["open", "acknowledged", "remediating"].includes(v.status);
    const again = sends && active && !waiting && mayComply(v.tenant_id)
      ? h("button", { type: "button", id: "cv-remediate", onclick: () => remediate(v) },
        one.remediations.length ? "Send the command again" : "Send the command")
      : "";
    return [
      h("h3", {}, "Remediation"),
      plan
        ? h("p", { class: "wrap" }, plan.text, h("span", { class: "muted" },
          ` · ${plan.strategy}${plan.action ? ` (${plan.action})` : ""}`))
        : h("p", { class: "muted" }, "The control's advice cannot be shown: its pack is not enabled for this tenant now, or the tenant's bundle is refused."),
      again,
      one.remediations.length
        ? h("table", { "aria-label": "Remediation actions" },
          h("thead", {}, h("tr", {}, ["Asked", "Action", "Status", "Dry run", "Asked by", "Executor", "Detail"]
            .map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, ...one.remediations.map((a) => h("tr", { "data-remediation": a.remediation_id },
            h("td", { class: "mono" }, time(a.requested_at)), h("td", {}, a.action),
            h("td", {}, h("span", { class: `outcome ${REMEDIATION_BADGE[a.status] || ""}` }, a.status)),
            h("td", {}, a.dry_run === null ? "" : a.dry_run ? "yes" : "no"),
            h("td", {}, a.requested_by || "portcullis"), h("td", {}, a.executor || ""),
            h("td", { class: "wrap" }, a.detail || "")))))
        : h("p", { class: "muted" }, sends ? "No command was sent for it yet." : "Nothing is sent for this control: the violation is the task."),
    ];
  };

  const remediate = async (v) => {
    try {
      const a = (await api(`/v1/compliance/violations/${encodeURIComponent(v.violation_id)}/remediate`, { method: "POST", body: {} })).result;
      message(vMessage, "notice", `${a.action} asked for ${a.resource_id}${a.strategy === "scheduled" ? " (in the next maintenance window)" : ""}`);
    } catch (e) {
      message(vMessage, "error", `Remediate: ${e.message}`);
    }
    await showDetail(v);
  };

  const load = async () => {
    let rows;
    const status = vStatus.value === "active" ? undefined : vStatus.value;
    try {
      rows = (await api(`/v1/compliance/violations${query({ tenant_id: vTenant.value, status,
        active: vStatus.value === "active" ? "true" : undefined, severity: vSeverity.value, limit: 500 })}`)).result;
    } catch (e) {
      message(vMessage, "error", e.message);
      return;
    }
    const bySeverity = { critical: 0, high: 0, medium: 0, low: 0 };
    for (const r of rows) if (r.status !== "resolved" && r.status !== "suppressed") bySeverity[r.severity] += 1;
    summary.replaceChildren(...Object.entries(bySeverity).map(([sev, n]) =>
      h("span", { class: `outcome ${SEVERITY_BADGE[sev] || ""}`, "data-severity": sev }, `${n} ${sev}`)));
    rowsBody.replaceChildren(...rows.map((v) => {
      const actions = mayComply(v.tenant_id)
        ? NEXT_STATUS[v.status].map((s) => h("button", { type: "button", "data-action": s,
          class: s === "resolved" ? "primary" : undefined, onclick: () => change(v, s) }, STATUS_VERB[s]))
        : [];
      return h("tr", { "data-violation": v.violation_id, "data-control": v.control_id },
        h("td", { class: "mono" }, time(v.last_seen)), h("td", {}, v.tenant_id),
        h("td", {}, h("span", { class: `outcome ${SEVERITY_BADGE[v.severity] || ""}` }, v.severity)),
        h("td", { class: "wrap" }, h("div", {}, `${v.control_id} ${v.title}`), h("div", { class: "muted" }, v.pack)),
        h("td", { class: "mono wrap" }, v.resource_id, h("div", { class: "muted" }, v.resource_type)),
        h("td", {}, h("span", { class: `outcome ${STATUS_BADGE[v.status] || ""}` }, v.status),
          v.suppressed_until ? h("div", { class: "muted" }, `until ${time(v.suppressed_until)}`) : "",
          v.reason ? h("div", { class: "muted wrap" }, v.reason) : ""),
        h("td", { class: "num" }, v.occurrences),
        h("td", {}, h("div", { class: "row-actions" },
          h("button", { type: "button", onclick: () => showDetail(v) }, "Evidence"), ...actions)));
    }));
    empty.textContent = rows.length ? "" : "No violations here. Tenants enable packs in their bundle's metadata.json.";
  };
  for (const el of [vTenant, vStatus, vSeverity]) el.addEventListener("change", load);

  // Scans: score per framework over time, failing controls, reports.
  const sTenant = tenantSelect("cs-tenant", { allowAll: false });
  const sFramework = h("select", { id: "cs-framework" });
  const sMessage = h("div", { "aria-live": "polite" });
  const trend = h("div", { id: "cs-trend" });
  const failing = h("tbody");
  const scansBody = h("tbody");
  const download = async (scan, format) => {
    try {
      const res = await fetch(`/v1/compliance/scans/${encodeURIComponent(scan.scan_id)}?format=${format}`,
        { headers: { Authorization: `Bearer ${session.token}` } });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const url = URL.createObjectURL(await res.blob());
      const a = h("a", { href: url, download: `${scan.tenant_id}-${scan.framework}-${scan.scanned_at}.${format === "ocsf" ? "ocsf.json" : format}` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) {
      message(sMessage, "error", `Report: ${e.message}`);
    }
  };
  const loadFrameworks = async () => {
    if (!sTenant.value) return;
    try {
      const r = (await api(`/v1/compliance/frameworks${query({ tenant_id: sTenant.value })}`)).result;
      const keep = sFramework.value;
      sFramework.replaceChildren(...r.frameworks.map((f) => h("option", { value: f.id }, f.title)));
      if (r.frameworks.some((f) => f.id === keep)) sFramework.value = keep;
      message(sMessage, "notice", r.frameworks.length ? "" : "This tenant enables no compliance pack.");
    } catch (e) {
      message(sMessage, "error", e.message);
    }
  };
  const loadScans = async () => {
    if (!sTenant.value || !sFramework.value) return;
    let rows;
    try {
      rows = (await api(`/v1/compliance/scans${query({ tenant_id: sTenant.value, framework: sFramework.value, limit: 30 })}`)).result;
    } catch (e) {
      message(sMessage, "error", e.message);
      return;
    }
    const points = rows.slice().reverse().filter((r) => r.score !== null);
    const chart = svg("svg", { viewBox: "0 0 360 90", width: 360, height: 90, role: "img",
      "aria-label": `score of ${sFramework.value} over the last ${points.length} scans`, class: "rho-chart" });
    if (points.length) {
      // One scan draws a level line across; more draw the score from the oldest to the newest.
      const line = points.length === 1 ? [points[0], points[0]] : points;
      const x = (i) => (i / (line.length - 1)) * 360;
      chart.append(svg("polyline", { class: "rho",
        points: line.map((r, i) => `${x(i).toFixed(1)},${(90 - r.score * 0.9).toFixed(1)}`).join(" ") }));
    }
    trend.replaceChildren(chart);
    scansBody.replaceChildren(...rows.map((r) => h("tr", { "data-scan": r.scan_id },
      h("td", { class: "mono" }, time(r.scanned_at)),
      h("td", { class: "num" }, r.pass_rate === null ? "—" : `${r.pass_rate.toFixed(1)} %`),
      h("td", { class: "num" }, r.score === null ? "—" : `${r.score.toFixed(1)} %`),
      h("td", {}, `${r.passed} passed, ${r.failed} failed, ${r.muted} muted`),
      h("td", {}, r.requested_by),
      h("td", {}, h("div", { class: "row-actions" }, ...["html", "csv", "ocsf", "json"].map((f) =>
        h("button", { type: "button", "data-format": f, onclick: () => download(r, f) }, f.toUpperCase())))))));
    const latest = rows[0];
    failing.replaceChildren(...(latest ? latest.controls.filter((c) => c.status !== "PASS") : []).map((c) =>
      h("tr", { "data-failing": `${c.pack}/${c.control_id}` },
        h("td", {}, c.requirement), h("td", { class: "wrap" }, c.title),
        h("td", {}, h("span", { class: `outcome ${SEVERITY_BADGE[c.severity] || ""}` }, c.severity)),
        h("td", {}, c.status), h("td", { class: "num" }, c.failing_resources), h("td", { class: "wrap" }, c.remediation))));
  };
  const runScan = async () => {
    try {
      const scan = (await api("/v1/compliance/scans", { method: "POST",
        body: { tenant_id: sTenant.value, framework: sFramework.value } })).result;
      message(sMessage, "notice", `Scanned: pass rate ${scan.pass_rate === null ? "—" : scan.pass_rate.toFixed(1) + " %"}, score ${scan.score === null ? "—" : scan.score.toFixed(1) + " %"}`);
    } catch (e) {
      message(sMessage, "error", `Scan: ${e.message}`);
    }
    await loadScans();
  };
  sTenant.addEventListener("change", async () => { await loadFrameworks(); await loadScans(); });
  sFramework.addEventListener("change", loadScans);

  main.append(heading,
    h("h2", {}, "Scores"),
    h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); runScan(); } },
      h("label", { for: "cs-tenant" }, "Tenant", sTenant), h("label", { for: "cs-framework" }, "Framework", sFramework),
      mayComply(sTenant.value) || session.me.admin ? h("button", { class: "primary", type: "submit", id: "cs-run" }, "Scan now") : ""),
    sMessage, trend,
    h("table", { "aria-label": "Scans" },
      h("thead", {}, h("tr", {}, ["Scanned", "Pass rate", "Score", "Controls", "By", "Report"].map((c) => h("th", { scope: "col" }, c)))), scansBody),
    h("h2", {}, "Failing controls (latest scan)"),
    h("table", { "aria-label": "Failing controls" },
      h("thead", {}, h("tr", {}, ["Requirement", "Control", "Severity", "Status", "Resources", "Remediation"].map((c) => h("th", { scope: "col" }, c)))), failing),
    h("h2", {}, "Violations"),
    h("p", { class: "muted" }, "Compliance packs check every CloudTrail event as it arrives; a control that fires opens a violation for its resource, which you acknowledge, remediate, resolve, or suppress for a while with a reason. A failed attempt is counted but opens nothing."),
    h("form", { class: "filters", onsubmit: (e) => e.preventDefault() },
      h("label", { for: "cv-tenant" }, "Tenant", vTenant), h("label", { for: "cv-status" }, "Status", vStatus),
      h("label", { for: "cv-severity" }, "Severity", vSeverity),
      h("label", { for: "cv-reason" }, "Reason for the next change", reason),
      h("label", { for: "cv-until" }, "Suppress until", until)),
    h("p", { id: "cv-until-help", class: "muted" }, "A suppression needs a reason and an end, at most a year ahead."),
    vMessage, summary,
    h("table", { "aria-label": "Violations" },
      h("thead", {}, h("tr", {}, ["Last seen", "Tenant", "Severity", "Control", "Resource", "Status", "Seen", ""]
        .map((c) => h("th", { scope: "col" }, c)))), rowsBody),
    empty, detail);
  const timer = setInterval(() => { if (!heading.isConnected) clearInterval(timer); else { load(); loadScans(); } }, 10000);
  refreshTimer = timer;
  await Promise.all([load(), loadFrameworks().then(loadScans)]);
}

window.addEventListener("hashchange", () => render());
render();
