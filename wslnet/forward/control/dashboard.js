// The wslnet dashboard: polls the forwarder's API once a second. No dependencies.
// The session token lives in sessionStorage (this origin, this tab) and goes out as a
// header: no cookie, so no other server on 127.0.0.1 is ever sent a credential.
"use strict";

const KEY = "wslnet-session";
const HEADER = "X-Wslnet-Session";
const SMOOTH = 5; // seconds averaged for a rate: a steady transfer reads steady
const WINDOW = 900; // seconds of history shown (the server keeps as much)
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
const DASHES = [[], [6, 3], [2, 3], [8, 3, 2, 3]];
const el = (id) => document.getElementById(id);
const state = { stopped: false, history: null, rules: [], listenersAuto: false };

// -- units -----------------------------------------------------------------------------
function human(n, unit) {
  const units = ["", "k", "M", "G", "T"];
  let i = 0, v = Number(n) || 0;
  while (Math.abs(v) >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  const digits = i === 0 || v >= 100 ? 0 : 1;
  const prefix = units[i] === "k" ? "K" : units[i];
  return `${v.toFixed(digits)} ${prefix}${unit}`;
}
const bytes = (n) => human(n, "B");
const rate = (n) => human(n, "B/s");
const exact = (n, unit) => `${Math.round(n).toLocaleString("en-US")} ${unit}`;
function ago(ts) {
  const s = Math.max(0, Date.now() / 1000 - ts);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}
const clock = (ts) => new Date(ts * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

// -- DOM helpers -------------------------------------------------------------------------
function cell(content, cls, title) {
  const td = document.createElement("td");
  if (cls) td.className = cls;
  if (title) td.title = title;
  td.append(content instanceof Node ? content : String(content ?? ""));
  return td;
}
function row(cells) {
  const tr = document.createElement("tr");
  tr.append(...cells);
  return tr;
}
function button(label, onclick) {
  const b = document.createElement("button");
  b.type = "button"; b.textContent = label; b.onclick = onclick; b.disabled = state.stopped;
  return b;
}

// -- the session -------------------------------------------------------------------------
async function login() {
  const code = new URLSearchParams(location.hash.slice(1)).get("code");
  if (!code) return;
  history.replaceState(null, "", location.pathname); // the code leaves the address bar now
  const r = await fetch("/v1/session", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ code }),
  });
  const doc = await r.json();
  if (r.ok) sessionStorage.setItem(KEY, doc.token);
  else el("login-why").textContent = doc.error + ".";
}
function showLogin() {
  sessionStorage.removeItem(KEY);
  el("login").hidden = false; el("app").hidden = true; el("summary").textContent = "";
}
class LoggedOut extends Error {}
class Stopped extends Error {}
async function api(path, init) {
  const token = sessionStorage.getItem(KEY);
  if (!token) throw new LoggedOut();
  const opts = Object.assign({}, init || {});
  opts.headers = Object.assign({ [HEADER]: token }, opts.headers || {});
  let r;
  try { r = await fetch(path, opts); } catch (e) { throw new Stopped(); }
  if (r.status === 401) throw new LoggedOut();
  return r;
}
async function json(path) { return (await api(path)).json(); }

// -- stopped: a banner, and every control off --------------------------------------------
function setStopped(stopped) {
  if (state.stopped === stopped) return;
  state.stopped = stopped;
  el("stopped").hidden = !stopped;
  document.body.classList.toggle("stopped", stopped);
  document.querySelectorAll("button, input").forEach((c) => { c.disabled = stopped; });
  el("summary").textContent = stopped ? "stopped" : el("summary").textContent;
}

// -- rules ---------------------------------------------------------------------------------
function targetHealth(r) {
  const span = document.createElement("span");
  if (r.proto !== "tcp") { span.textContent = "–"; span.className = "muted"; return span; }
  const d = r.last_dial;
  if (!d) { span.textContent = "not dialled yet"; span.className = "muted"; return span; }
  span.className = d.ok ? "up" : "down";
  span.textContent = `${d.ok ? "● up" : "● " + d.reason}, ${ago(d.at)}`;
  span.title = `last dial ${d.ok ? "connected" : "failed: " + d.reason} at ${new Date(d.at * 1000).toLocaleString()}`;
  return span;
}
function resolvedDiffers(r) {
  return r.resolved.length > 0 && r.resolved.join(",") !== r.target;
}
function currentRate(id) {
  const s = (state.history?.rules || []).find((x) => x.rule === id);
  if (!s) return 0;
  const vals = smoothed(s);
  return vals.length ? vals[vals.length - 1] : 0;
}
function drawRules(rules) {
  const showResolved = rules.some(resolvedDiffers);
  document.querySelectorAll(".resolved").forEach((c) => { c.hidden = !showResolved; });
  const body = el("rules"); body.replaceChildren();
  for (const r of rules) {
    const errors = Object.entries(r.errors).map(([k, v]) => `${k} ${v}`).join(", ");
    const conns = `${r.connections_active}${r.max_connections ? " / " + r.max_connections : ""}`;
    let open = "";
    if (r.open_url && !r.closing) {
      open = document.createElement("a");
      open.href = r.open_url; open.target = "_blank"; open.rel = "noopener noreferrer"; open.textContent = "open";
    }
    const remove = r.closing ? "draining" : button("remove", () => removeRule(r));
    if (remove instanceof Node) remove.dataset.rule = r.id;
    const resolved = cell(resolvedDiffers(r) ? r.resolved.join(", ") : "", "resolved");
    resolved.hidden = !showResolved;
    const rt = currentRate(r.id);
    const rateCell = cell(rate(rt), "num rate", exact(rt, "bytes/s"));
    rateCell.dataset.rate = String(rt);
    const tr = row([
      cell(r.id), cell(r.listen.join(" ")), cell(r.target), resolved, cell(targetHealth(r)),
      cell(conns, "num", r.max_connections ? "open / most allowed at once" : "open"),
      cell(r.connections_total, "num"),
      cell(bytes(r.bytes_up), "num", exact(r.bytes_up, "bytes")),
      cell(bytes(r.bytes_down), "num", exact(r.bytes_down, "bytes")),
      rateCell, cell(errors || "–", errors ? "down" : "muted"), cell(open), cell(remove),
    ]);
    tr.dataset.rule = r.id;
    body.append(tr);
  }
}
async function removeRule(r) {
  if (!confirm(`Remove forward #${r.id} (${r.listen.join(" ")} → ${r.target})? Open connections finish first.`)) return;
  await api(`/v1/forwards/${r.id}`, { method: "DELETE" });
  refresh();
}

// -- the graph -----------------------------------------------------------------------------
function smoothed(s) {
  const out = [];
  let sum = 0;
  for (let i = 0; i < s.up.length; i++) {
    sum += s.up[i] + s.down[i];
    if (i >= SMOOTH) sum -= s.up[i - SMOOTH] + s.down[i - SMOOTH];
    out.push(sum / Math.min(i + 1, SMOOTH));
  }
  return out;
}
function niceMax(v) {
  if (v <= 0) return 1000;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  return [1, 2, 5, 10].map((m) => m * p).find((m) => m >= v);
}
function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
function geometry() {
  const c = el("graph"), dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth, h = c.clientHeight;
  return { c, dpr, w, h, left: 64, right: 8, top: 8, bottom: 22 };
}
function drawGraph() {
  const g = geometry(), doc = state.history;
  g.c.width = g.w * g.dpr; g.c.height = g.h * g.dpr;
  const ctx = g.c.getContext("2d");
  ctx.scale(g.dpr, g.dpr); ctx.clearRect(0, 0, g.w, g.h);
  if (!doc) return;
  const now = Math.floor(doc.now), from = now - WINDOW;
  const series = doc.rules.map((s) => ({ s, v: smoothed(s) }));
  const max = niceMax(Math.max(0, ...series.flatMap((x) => x.v.slice(-WINDOW))));
  const pw = g.w - g.left - g.right, ph = g.h - g.top - g.bottom;
  const x = (t) => g.left + pw * (t - from) / WINDOW, y = (v) => g.top + ph * (1 - v / max);
  ctx.font = "11px system-ui, sans-serif"; ctx.lineWidth = 1;
  ctx.strokeStyle = cssVar("--line"); ctx.fillStyle = cssVar("--muted");
  ctx.textAlign = "right"; ctx.textBaseline = "middle";
  for (let i = 0; i <= 4; i++) { // value axis: human units
    const v = max * i / 4;
    ctx.beginPath(); ctx.moveTo(g.left, y(v)); ctx.lineTo(g.w - g.right, y(v)); ctx.stroke();
    ctx.fillText(rate(v), g.left - 4, y(v));
  }
  ctx.textAlign = "center"; ctx.textBaseline = "top";
  for (let t = Math.ceil(from / 180) * 180; t <= now; t += 180) { // time axis: every 3 min
    ctx.beginPath(); ctx.moveTo(x(t), g.top); ctx.lineTo(x(t), g.top + ph); ctx.stroke();
    ctx.fillText(clock(t), x(t), g.top + ph + 4);
  }
  series.forEach(({ s, v }, n) => {
    ctx.strokeStyle = COLORS[n % COLORS.length];
    ctx.setLineDash(DASHES[Math.floor(n / COLORS.length) % DASHES.length]);
    ctx.lineWidth = 2; ctx.beginPath();
    v.forEach((val, i) => {
      const t = s.start + i;
      if (t < from) return;
      if (i === 0 || t - 1 < from) ctx.moveTo(x(t), y(val)); else ctx.lineTo(x(t), y(val));
    });
    ctx.stroke(); ctx.setLineDash([]);
  });
  drawLegend(series);
}
function drawLegend(series) {
  const ul = el("legend"); ul.replaceChildren();
  series.forEach(({ s, v }, n) => {
    const rule = state.rules.find((r) => r.id === s.rule);
    const li = document.createElement("li"), sw = document.createElement("span");
    sw.className = "swatch"; sw.style.borderTopColor = COLORS[n % COLORS.length];
    if (n >= COLORS.length) sw.style.borderTopStyle = "dashed";
    const now = v.length ? v[v.length - 1] : 0, peak = Math.max(0, ...v);
    const total = s.up.reduce((a, b) => a + b, 0) + s.down.reduce((a, b) => a + b, 0);
    li.append(sw, `#${s.rule} ${rule ? rule.listen[0] + " → " + rule.target : ""}: ${rate(now)} now, peak ${rate(peak)}, ${bytes(total)} in 15 min`);
    li.title = `now ${exact(now, "bytes/s")}, peak ${exact(peak, "bytes/s")}, ${exact(total, "bytes")}`;
    li.dataset.rule = s.rule; li.dataset.peak = String(peak); li.dataset.total = String(total);
    ul.append(li);
  });
}
function hover(ev) {
  const g = geometry(), doc = state.history, tip = el("tip");
  if (!doc || !doc.rules.length) { tip.hidden = true; return; }
  const px = ev.offsetX;
  const now = Math.floor(doc.now), from = now - WINDOW;
  const t = Math.round(from + WINDOW * (px - g.left) / (g.w - g.left - g.right));
  if (t < from || t > now) { tip.hidden = true; return; }
  const lines = [new Date(t * 1000).toLocaleTimeString()];
  for (const s of doc.rules) {
    const i = t - s.start;
    if (i < 0 || i >= s.up.length) continue;
    const v = smoothed(s)[i];
    lines.push(`#${s.rule} ${rate(v)} (${exact(v, "B/s")}), this second: ${exact(s.up[i], "B")} up, ${exact(s.down[i], "B")} down, ${s.active[i]} open`);
  }
  tip.textContent = lines.join("\n"); tip.hidden = false;
  tip.style.left = `${Math.min(px + 12, Math.max(0, g.w - tip.offsetWidth))}px`;
}

// -- listeners not forwarded yet -------------------------------------------------------------
async function loadListeners() {
  const doc = await json("/v1/wsl-listeners");
  state.listenersAuto = doc.source === "auto";
  el("listeners-note").textContent = doc.source === "unavailable" ? `cannot list them: ${doc.error}`
    : doc.source === "auto" ? "from the auto-forward watch" : "asked WSL just now";
  const body = el("listeners"); body.replaceChildren();
  for (const l of doc.listeners) {
    const b = button("forward", () => forwardListener(l));
    b.dataset.port = l.port; b.dataset.proto = l.proto; b.title = l.rule;
    body.append(row([cell(l.proto), cell(l.address), cell(l.port, "num"), cell(b)]));
  }
  if (!doc.listeners.length && doc.source !== "unavailable") body.append(row([cell("none", "muted")]));
}
async function forwardListener(l) {
  const r = await api("/v1/forwards", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ rule: l.rule }),
  });
  el("listeners-error").textContent = r.ok ? "" : (await r.json()).error;
  await refresh(); await loadListeners();
}

// -- the loop ----------------------------------------------------------------------------------
async function refresh() {
  try {
    const st = await json("/v1/status");
    setStopped(false);
    el("login").hidden = true; el("app").hidden = false;
    el("summary").textContent = `up ${ago(st.started).replace(" ago", "")}, engine ${st.engine}` + (st.config ? `, config ${st.config}` : "");
    state.rules = st.rules;
    state.history = await json("/v1/history");
    drawRules(st.rules);
    drawGraph();
    const conns = (await json("/v1/connections")).connections;
    const cb = el("conns"); cb.replaceChildren();
    for (const c of conns) {
      cb.append(row([cell(c.proto), cell(c.rule), cell(c.client), cell(c.target),
        cell(bytes(c.up), "num", exact(c.up, "bytes")), cell(bytes(c.down), "num", exact(c.down, "bytes")),
        cell(`${Number(c.age).toFixed(1)} s`, "num"), cell(c.state)]));
    }
    const events = (await json("/v1/events")).events;
    const eb = el("events"); eb.replaceChildren();
    for (const e of events.slice(-15).reverse()) {
      const fields = Object.entries(e.fields).map(([k, v]) => `${k}=${v}`).join(" ");
      eb.append(row([cell(new Date(e.ts * 1000).toLocaleTimeString()), cell(e.event, e.level === "info" ? "" : "down"), cell(fields)]));
    }
  } catch (err) {
    if (err instanceof LoggedOut) showLogin();
    else if (err instanceof Stopped) setStopped(true);
    else el("summary").textContent = `error: ${err.message}`;
  }
}
let tick = 0;
async function start() {
  await login().catch(() => setStopped(true));
  el("add").onsubmit = async (ev) => {
    ev.preventDefault();
    const r = await api("/v1/forwards", { method: "POST", headers: { "Content-Type": "text/plain" }, body: el("rule").value });
    el("error").textContent = r.ok ? "" : (await r.json()).error;
    if (r.ok) el("rule").value = "";
    refresh();
  };
  el("listeners-refresh").onclick = () => loadListeners().catch(() => {});
  el("graph").onmousemove = hover;
  el("graph").onmouseleave = () => { el("tip").hidden = true; };
  window.onresize = drawGraph;
  window.onhashchange = () => login().then(refresh); // a link opened in this tab again
  await refresh();
  loadListeners().catch(() => {});
  setInterval(() => {
    refresh();
    if (state.listenersAuto && !state.stopped && ++tick % 3 === 0) loadListeners().catch(() => {});
  }, 1000);
}
start();
