// Retouch Bridge dashboard. Plain JS, no build step: the bridge serves this file as is.
// Authentication is the HttpOnly cookie set by /dashboard?token=...; every request here
// is same-origin, so the cookie rides along (fetch, <img> and the WebSocket).
"use strict";

const MAX_FINISHED = 40;
const MAX_RESULTS = 24;
const LOG_LINES = 300;
const LOG_POLL_MS = 2000;
const SYSTEM_POLL_MS = 5000;
const FINAL = new Set(["done", "failed", "cancelled"]);

const jobs = new Map();     // id -> status object as /v1/jobs gives it
const models = new Map();   // id -> model state
let queue = { paused: false, counts: {} };
let settingsBody = null;
let system = null;

const $ = (id) => document.getElementById(id);

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "style") Object.assign(el.style, v);  // CSSOM: the page's CSP forbids style attributes
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

async function api(path, options = {}) {
  const opts = { credentials: "same-origin", ...options, headers: { ...(options.headers || {}) } };
  if (opts.json !== undefined) {
    opts.body = JSON.stringify(opts.json);
    opts.headers["Content-Type"] = "application/json";
    delete opts.json;
  }
  const resp = await fetch(path, opts);
  let body = null;
  const type = resp.headers.get("Content-Type") || "";
  if (type.includes("json")) body = await resp.json();
  if (!resp.ok) {
    const msg = body && body.error ? body.error.message : `${resp.status} ${resp.statusText}`;
    const err = new Error(msg);
    err.status = resp.status;
    err.code = body && body.error ? body.error.code : null;
    throw err;
  }
  return body;
}

let toastTimer = null;
function toast(message) {
  const el = $("toast");
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 6000);
}

// -- formatting --------------------------------------------------------------------------
function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n >= 100 || i === 0 ? n.toFixed(0) : n.toFixed(1)} ${units[i]}`;
}
function duration(s) {
  if (s === null || s === undefined || !isFinite(s)) return "";
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.round(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}
function shortId(id) { return id.replace(/^j-/, "").slice(0, 8); }
function now() { return Date.now() / 1000; }

// -- jobs ----------------------------------------------------------------------------------
function elapsed(job) {
  if (job.started) return (job.finished || now()) - job.started;
  if (job.state === "queued") return now() - job.created;
  return null;
}

function sortedJobs() {
  const active = [], done = [];
  for (const job of jobs.values()) (FINAL.has(job.state) ? done : active).push(job);
  active.sort((a, b) => (a.state === "running" ? -1 : 0) - (b.state === "running" ? -1 : 0) || a.created - b.created);
  done.sort((a, b) => (b.finished || b.created) - (a.finished || a.created));
  return { active, done: done.slice(0, MAX_FINISHED) };
}

function jobRow(job) {
  const pct = Math.round((job.progress || 0) * 100);
  const failed = job.state === "failed";
  const message = failed && job.error ? job.error.message : job.message || "";
  const canCancel = !FINAL.has(job.state);
  return h("tr", { class: job.state, dataset: { jobId: job.id, state: job.state, progress: String(job.progress || 0) } },
    h("td", {}, h("span", { class: `pill ${job.state}`, text: job.state })),
    h("td", { class: "op", title: job.op }, job.op, job.priority === "batch" ? h("span", { class: "pri", text: "batch" }) : null),
    h("td", {}, h("div", { class: "progress-cell" },
      h("div", { class: `bar ${job.state}`, role: "progressbar", "aria-valuenow": String(pct), "aria-valuemin": "0", "aria-valuemax": "100" },
        h("i", { style: { width: `${job.state === "done" ? 100 : pct}%` } })),
      h("span", { class: "pct", text: `${job.state === "done" ? 100 : pct}%` }))),
    h("td", { class: `msg${failed ? " err" : ""}`, title: message, text: message }),
    h("td", { class: "num", dataset: { elapsed: "1" }, text: duration(elapsed(job)) }),
    h("td", { class: "id", title: job.id, text: shortId(job.id) }),
    h("td", { class: "c-act" }, canCancel ? h("button", {
      class: "btn small ghost", type: "button", title: "Cancel this job",
      onclick: () => cancelJob(job.id),
    }, "Cancel") : null));
}

function renderJobs() {
  const { active, done } = sortedJobs();
  const showFinished = $("show-finished").checked;
  const rows = [...active, ...(showFinished ? done : [])].map(jobRow);
  $("jobs").replaceChildren(...rows);
  $("jobs-empty").hidden = rows.length > 0;
  const c = queue.counts || {};
  $("jobs-count").textContent = `${active.length} active · ${done.length} finished`;
  renderQueueSummary(c);
}

function updateJobRow(job) {
  // Progress arrives many times a second: patch the row in place instead of re-rendering.
  const row = document.querySelector(`tr[data-job-id="${CSS.escape(job.id)}"]`);
  if (!row || row.dataset.state !== job.state) { renderJobs(); return; }
  const pct = Math.round((job.progress || 0) * 100);
  row.dataset.progress = String(job.progress || 0);
  row.querySelector(".bar > i").style.width = `${pct}%`;
  row.querySelector(".bar").setAttribute("aria-valuenow", String(pct));
  row.querySelector(".pct").textContent = `${pct}%`;
  const msg = row.querySelector(".msg");
  msg.textContent = job.message || "";
  msg.title = job.message || "";
}

function tickElapsed() {
  for (const row of document.querySelectorAll("#jobs tr")) {
    const job = jobs.get(row.dataset.jobId);
    if (job && !FINAL.has(job.state)) row.querySelector("[data-elapsed]").textContent = duration(elapsed(job));
  }
}

async function cancelJob(id) {
  try { await api(`/v1/jobs/${encodeURIComponent(id)}`, { method: "DELETE" }); }
  catch (e) { toast(`Cancel failed: ${e.message}`); }
}

function renderQueueSummary() {
  let running = 0, queued = 0;
  for (const job of jobs.values()) {
    if (job.state === "running") running++;
    else if (job.state === "queued") queued++;
  }
  const el = $("queue-summary");
  el.replaceChildren(
    h("b", { text: String(running) }), " running · ", h("b", { text: String(queued) }), " queued",
    ...(queue.paused ? [h("span", { class: "paused", text: " · paused" })] : []));
  const btn = $("pause-btn");
  btn.disabled = false;
  btn.textContent = queue.paused ? "Resume queue" : "Pause queue";
  btn.classList.toggle("warn", queue.paused);
  document.body.dataset.paused = queue.paused ? "1" : "0";
}

async function togglePause() {
  const btn = $("pause-btn");
  btn.disabled = true;
  try {
    queue = await api(queue.paused ? "/v1/queue/resume" : "/v1/queue/pause", { method: "POST" });
  } catch (e) { toast(e.message); }
  renderQueueSummary();
}

// -- results -----------------------------------------------------------------------------
let renderedResults = "";
function renderResults() {
  const done = [...jobs.values()].filter((j) => j.state === "done" && j.result)
    .sort((a, b) => b.finished - a.finished).slice(0, MAX_RESULTS);
  const key = done.map((j) => j.id).join(",");
  $("results-count").textContent = done.length ? String(done.length) : "";
  $("results-empty").hidden = done.length > 0;
  if (key === renderedResults) return;
  renderedResults = key;
  $("results").replaceChildren(...done.map((job) => {
    const layer = (job.result.layers || [])[0] || {};
    const [w, hgt] = job.result.extent || [layer.width, layer.height];
    const depth = layer.depth ? `${layer.depth}-bit` : "";
    return h("figure", { class: "thumb", dataset: { jobId: job.id }, title: `${job.op} · ${job.id}` },
      h("div", { class: "img" }, h("img", {
        src: `/v1/jobs/${encodeURIComponent(job.id)}/thumbnail?size=256`, alt: `${job.op} result`, loading: "lazy",
        onerror: (ev) => { ev.target.replaceWith(h("span", { class: "empty", text: "expired" })); },
      })),
      h("figcaption", { class: "meta" },
        h("div", { class: "row" }, h("b", { text: job.op }),
          h("span", { text: duration(job.finished - (job.started || job.created)) })),
        h("span", { text: `${w}×${hgt}${depth ? ` · ${depth}` : ""}` })));
  }));
}

// -- events ------------------------------------------------------------------------------
let ws = null;
let retryMs = 500;

function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  ws = new WebSocket(`${proto}://${location.host}/v1/events`);
  ws.onopen = () => {
    retryMs = 500;
    setConn("live", "Live");
    refreshJobs();  // catch up on what happened while disconnected
  };
  ws.onmessage = (msg) => {
    let event;
    try { event = JSON.parse(msg.data); } catch { return; }
    onEvent(event);
  };
  ws.onclose = () => {
    setConn("down", "Reconnecting…");
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 8000);
  };
}

function setConn(kind, text) {
  const el = $("conn");
  el.className = `conn ${kind}`;
  el.querySelector("span").textContent = text;
  document.body.dataset.live = kind === "live" ? "1" : "0";
}

function onEvent(ev) {
  switch (ev.type) {
    case "queued": case "started": case "progress": case "done": case "failed": case "cancelled": {
      const prev = jobs.get(ev.job);
      const job = prev ? { ...prev } : { id: ev.job, op: ev.op, priority: "interactive", created: ev.time, started: null, finished: null, error: null, result: null };
      job.state = ev.state || ev.type;
      job.progress = ev.progress ?? job.progress ?? 0;
      job.message = ev.message ?? "";
      if (ev.type === "started") job.started = ev.time;
      if (FINAL.has(ev.type)) job.finished = ev.time;
      if (ev.type === "failed") job.error = ev.error;
      if (ev.type === "done") job.result = ev.result;
      jobs.set(ev.job, job);
      if (ev.type === "progress" && prev && prev.state === job.state) updateJobRow(job);
      else renderJobs();
      if (ev.type === "done") renderResults();
      if (ev.type === "queued" && !prev) refreshJob(ev.job);  // priority and created time
      break;
    }
    case "model-progress": {
      const m = models.get(ev.model);
      if (ev.state === "failed") pullErrors.set(ev.model, ev.error || "failed");
      if (ev.state === "downloading") { pullErrors.delete(ev.model); watchPulls(ev.model); }
      if (m) {
        m.state = ev.state === "failed" ? "missing" : ev.state;
        if (ev.received !== null && ev.received !== undefined) { m.received = ev.received; m.total = ev.total; }
        renderModels();
      }
      if (ev.state === "installed" || ev.state === "failed") {
        if (ev.state === "failed") toast(`Download of ${ev.model} failed: ${ev.error}`);
        pulling.delete(ev.model);
        refreshModels();
      }
      break;
    }
    case "queue":
      queue.paused = !!ev.paused;
      renderQueueSummary();
      break;
    default:
      break;
  }
}

async function refreshJobs() {
  try {
    const body = await api("/v1/jobs");
    jobs.clear();
    for (const job of body.jobs) jobs.set(job.id, job);
    renderJobs();
    renderResults();
  } catch (e) { toast(`Jobs: ${e.message}`); }
}

async function refreshJob(id) {
  try {
    const job = await api(`/v1/jobs/${encodeURIComponent(id)}`);
    const cur = jobs.get(id);
    // Events may have moved on while this request ran: keep the newer state.
    if (cur && (FINAL.has(cur.state) || (cur.state === "running" && job.state === "queued"))) {
      cur.priority = job.priority; cur.created = job.created;
    } else jobs.set(id, job);
    renderJobs();
  } catch { /* expired or gone */ }
}

// -- system ------------------------------------------------------------------------------
function meter(used, total) {
  const pct = total ? Math.min(100, Math.round((used / total) * 100)) : 0;
  return h("div", { class: "bar" }, h("i", { style: { width: `${pct}%` } }));
}

function renderSystem() {
  const s = system;
  if (!s) return;
  $("version").textContent = `v${s.version}`;
  const d = s.device || {};
  const kind = (d.kind || "cpu").toUpperCase();
  const chipText = d.kind === "cpu" ? `${d.cpu_count || "?"} threads` : d.name || "";
  $("device-chip").replaceChildren(h("b", { text: kind }), ` · ${chipText}`);
  $("device-chip").title = d.warning || d.error || d.name || "";
  const rows = [];
  const add = (k, ...v) => rows.push(h("dt", { text: k }), h("dd", {}, ...v));
  add("Device", d.name || d.kind || "unknown", d.warning ? h("small", { text: ` — ${d.warning}` }) : null);
  if (d.torch) add("Torch", d.torch, d.fp16 ? h("small", { text: " · fp16" }) : null);
  const gm = s.gpu_memory;
  if (gm && gm.total) {
    const used = gm.total - gm.free;
    add("GPU memory", `${bytes(used)} / ${bytes(gm.total)}`, meter(used, gm.total));
  }
  const m = s.memory;
  if (m && m.total) {
    const used = m.total - m.available;
    add("RAM", `${bytes(used)} / ${bytes(m.total)}`, meter(used, m.total));
  }
  if (s.process) add("Bridge", s.process.rss ? `${bytes(s.process.rss)} resident` : `${bytes(s.process.peak_rss)} peak`);
  add("Budget", s.memory_budget_mb ? `${s.memory_budget_mb} MB for models` : "automatic");
  const r = s.resident;
  if (r && r.models.length) {
    const total = r.budget_bytes ? `${bytes(r.total_bytes)} / ${bytes(r.budget_bytes)}` : bytes(r.total_bytes);
    add("Loaded", h("div", { class: "resident-row" }, h("span", { text: total }),
      h("button", { class: "btn small", type: "button", id: "unload-all", onclick: () => unloadModels(null) }, "Unload all")),
    r.budget_bytes ? meter(r.total_bytes, r.budget_bytes) : null);
    // Least recently used first, as the server lists them: the next to be unloaded on top.
    for (const m of r.models) {
      add(m.kind, h("div", { class: "resident-row" },
        h("span", { class: "resident", dataset: { residentId: m.id, kind: m.kind }, title: `${m.label} · ${m.device}`,
          text: `${m.label} · ${bytes(m.bytes)}` }),
        m.in_use ? h("small", { text: "in use" })
          : h("button", { class: "btn small", type: "button", onclick: () => unloadModels([m.id]) }, "Unload")));
    }
  }
  add("Uptime", duration(s.uptime_s));
  $("system").replaceChildren(...rows);
  $("log-path").textContent = s.paths.log_file;
  $("log-path").title = s.paths.log_file;
}

async function unloadModels(ids) {
  try {
    const r = await api("/v1/resident/unload", ids ? { method: "POST", json: { ids } } : { method: "POST" });
    if (system) { system.resident = r.resident; renderSystem(); }
    if (r.pending.length) toast(`${r.pending.length} model(s) in use: unloaded when the job ends`);
  } catch (e) { toast(`Unload: ${e.message}`); }
}

async function refreshSystem() {
  try { system = await api("/v1/system"); queue = system.queue; renderSystem(); renderQueueSummary(); }
  catch (e) { $("device-chip").textContent = "device: unavailable"; }
}

// -- models ------------------------------------------------------------------------------
function renderModels() {
  const list = [...models.values()];
  const installed = list.filter((m) => m.state === "installed").length;
  $("models-count").textContent = list.length ? `${installed}/${list.length}` : "";
  $("models-count").title = `${installed} of ${list.length} models installed`;
  $("models-empty").hidden = list.length > 0;
  $("models").replaceChildren(...list.map((m) => {
    let side;
    if (m.state === "downloading") {
      const frac = m.total ? m.received / m.total : 0;
      side = [h("div", { class: "bar" }, h("i", { style: { width: `${Math.round(frac * 100)}%` } })),
        h("small", { text: m.total ? `${bytes(m.received)} / ${bytes(m.total)}` : bytes(m.received || 0) })];
    } else if (m.state === "installed") {
      side = [h("span", { class: "state-ok", text: "✓ installed" })];
    } else {
      const label = m.state === "corrupt" ? "Re-download" : "Download";
      side = [h("button", { class: "btn small", type: "button", disabled: !m.url, title: m.url ? `Download ${bytes(m.size)}` : "no download address; import the file instead",
        onclick: () => pullModel(m.id) }, label),
      m.state === "corrupt" ? h("small", { class: "state-bad", text: "corrupt" })
        : h("small", { text: m.partial ? `${bytes(m.partial)} partial` : m.size ? bytes(m.size) : "" })];
    }
    return h("li", { dataset: { modelId: m.id, state: m.state, received: String(m.received || 0) } },
      h("div", { class: "model-main" },
        h("div", { class: "model-title" }, h("b", { text: m.title || m.id, title: m.description || m.title || m.id }),
          m.non_commercial ? h("span", { class: "badge warn", text: "NC", title: "non-commercial licence" }) : null),
        h("div", { class: "model-sub", title: `${m.id} · ${m.task} · ${m.license || ""}` },
          h("span", { class: "badge task", text: m.task || "" }), " ", h("span", { class: "mono", text: m.id }),
          m.license ? ` · ${m.license}` : "",
          m.error ? h("span", { class: "state-bad", text: ` · ${m.error}` }) : null)),
      h("div", { class: "model-side" }, ...side));
  }));
}

// Progress events are a lossy stream (the server coalesces them), so while a download
// runs the list is also polled: its end is never missed.
const pulling = new Set();
const pullErrors = new Map();
let pullTimer = null;

function watchPulls(id) {
  pulling.add(id);
  if (!pullTimer) pullTimer = setInterval(refreshModels, 1500);
}

async function refreshModels() {
  try {
    const body = await api("/v1/models");
    models.clear();
    for (const m of body.models) models.set(m.id, m);
    for (const id of [...pulling]) {
      const m = models.get(id);
      if (m && m.state === "downloading") continue;
      pulling.delete(id);
      if (m && m.state !== "installed" && !pullErrors.has(id)) {
        pullErrors.set(id, "did not finish");
        toast(`Download of ${id} failed; the log says why`);
      }
    }
    for (const m of models.values()) {
      if (m.state === "downloading") watchPulls(m.id);
      if (m.state === "installed") pullErrors.delete(m.id);
      m.error = pullErrors.get(m.id) || null;
    }
    if (!pulling.size && pullTimer) { clearInterval(pullTimer); pullTimer = null; }
    renderModels();
    renderSettings();
  } catch (e) {
    models.clear();
    renderModels();
    $("models-empty").hidden = false;
    $("models-empty").textContent = `Model list unavailable: ${e.message}`;
  }
}

async function pullModel(id) {
  const m = models.get(id);
  try {
    pullErrors.delete(id);
    const r = await api(`/v1/models/${encodeURIComponent(id)}/pull`, { method: "POST" });
    if (m) { m.state = r.state; m.error = null; m.received = m.received || 0; m.total = m.total || m.size; }
    if (r.state === "downloading") watchPulls(id);
    renderModels();
  } catch (e) { toast(`Download of ${id}: ${e.message}`); }
}

// -- settings ----------------------------------------------------------------------------
function pendingMark(name) {
  return settingsBody && settingsBody.pending_restart.includes(name)
    ? h("span", { class: "pending", text: "restart", title: `running: ${JSON.stringify(settingsBody.running[name])}` }) : null;
}

let settingsDirty = false;
function renderSettings() {
  if (!settingsBody) return;
  const saved = settingsBody.saved;
  if (!settingsDirty) {
    $("set-port").value = saved.port;
    $("set-models-dir").value = saved.models_dir;
    $("set-budget").value = saved.memory_budget_mb;
  }
  for (const [id, name] of [["set-port", "port"], ["set-models-dir", "models_dir"], ["set-budget", "memory_budget_mb"]]) {
    document.querySelector(`.slot[data-for="${name}"]`).replaceChildren(...[pendingMark(name)].filter(Boolean));
    $(id).title = settingsBody.help[name] || "";
  }
  $("restart-badge").hidden = settingsBody.pending_restart.length === 0;
  // What a saved value breaks elsewhere (a port the Photoshop panel cannot reach).
  const warnings = settingsBody.warnings || [];
  $("settings-warnings").replaceChildren(...warnings.map((w) => h("li", { text: w })));
  $("settings-warnings").hidden = warnings.length === 0;
  $("settings-file").textContent = settingsBody.config_file;
  // Default model per task: one select per task that has models.
  const tasks = new Map();
  for (const m of models.values()) {
    if (!tasks.has(m.task)) tasks.set(m.task, []);
    tasks.get(m.task).push(m);
  }
  const box = $("default-models");
  if (settingsDirty && box.childElementCount) return;
  if (!tasks.size) { box.replaceChildren(); return; }
  box.replaceChildren(h("div", { class: "group-label", text: "Default models " }, pendingMark("default_models")),
    ...[...tasks.entries()].map(([task, list]) => {
      const registryDefault = list.find((m) => (m.default_for || []).length) || null;
      const sel = h("select", { name: `default:${task}`, dataset: { task } },
        h("option", { value: "", text: registryDefault ? `default: ${registryDefault.title || registryDefault.id}` : "registry default" }),
        ...list.map((m) => h("option", { value: m.id, text: `${m.title || m.id}${m.state === "installed" ? "" : " — not installed"}` })));
      sel.value = saved.default_models[task] || "";
      return h("label", { class: "field" }, h("span", { text: task }), sel, h("i", { class: "slot" }));
    }));
}

async function refreshSettings() {
  try { settingsBody = await api("/v1/settings"); renderSettings(); }
  catch (e) { $("settings-msg").textContent = e.message; $("settings-msg").className = "form-msg err"; }
}

async function saveSettings(ev) {
  ev.preventDefault();
  const msg = $("settings-msg");
  const body = {
    port: Number($("set-port").value),
    models_dir: $("set-models-dir").value.trim(),
    memory_budget_mb: Number($("set-budget").value || 0),
  };
  const selects = document.querySelectorAll("#default-models select");
  if (selects.length) {
    body.default_models = {};
    for (const s of selects) body.default_models[s.dataset.task] = s.value;
  }
  for (const el of document.querySelectorAll("#settings-form input")) el.classList.remove("invalid");
  try {
    settingsBody = await api("/v1/settings", { method: "PUT", json: body });
    settingsDirty = false;
    const pending = settingsBody.pending_restart;
    msg.textContent = pending.length ? `Saved. Restart the bridge to apply: ${pending.join(", ")}.` : "Saved.";
    msg.className = "form-msg ok";
    renderSettings();
  } catch (e) {
    msg.textContent = e.message;
    msg.className = "form-msg err";
    const field = { port: "set-port", models_dir: "set-models-dir", memory_budget_mb: "set-budget" };
    for (const [name, id] of Object.entries(field)) if (e.message.startsWith(name)) $(id).classList.add("invalid");
  }
}

// -- reports -----------------------------------------------------------------------------
async function refreshReports() {
  try {
    const body = await api("/v1/reports");
    const items = body.reports.filter((r) => /\.(html?|json|csv|txt)$/i.test(r.name));
    $("reports").replaceChildren(...items.slice(0, 20).map((r) => h("li", {},
      h("a", { class: "name", href: r.url, target: "_blank", rel: "noopener", text: r.name }),
      h("span", { class: "muted", text: new Date(r.modified * 1000).toLocaleString() }))));
    $("reports-empty").hidden = items.length > 0;
    $("reports-count").textContent = items.length ? String(items.length) : "";
    $("reports-empty").textContent = "No batch QA reports yet.";
    $("reports-empty").title = body.dir;
  } catch (e) { $("reports-empty").textContent = e.message; }
}

// -- log ---------------------------------------------------------------------------------
let lastLog = "";
async function refreshLog() {
  if (document.visibilityState === "hidden") return;
  try {
    const body = await api(`/v1/log?lines=${LOG_LINES}`);
    const text = body.lines.join("\n");
    if (text === lastLog) return;
    lastLog = text;
    const el = $("log");
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
    if (!body.lines.length) {
      el.replaceChildren(h("span", { class: "l-DEBUG", text: body.exists ? "(the log is empty)" : `(no log yet at ${body.path})` }));
    } else {
      el.replaceChildren(...body.lines.map((line) => {
        const m = / (DEBUG|INFO|WARNING|ERROR|CRITICAL) /.exec(line);
        return h("div", { class: m ? `l-${m[1]}` : "", text: line });
      }));
    }
    if ($("log-follow").checked && (atBottom || el.dataset.scrolled !== "1")) el.scrollTop = el.scrollHeight;
  } catch (e) { /* the next poll retries */ }
}

// -- start -------------------------------------------------------------------------------
function selectTab(name) {
  for (const tab of document.querySelectorAll(".tab")) {
    const on = tab.dataset.tab === name;
    tab.setAttribute("aria-selected", String(on));
    $(`page-${tab.dataset.tab}`).hidden = !on;
  }
}

function start() {
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => selectTab(tab.dataset.tab));
  $("pause-btn").addEventListener("click", togglePause);
  $("show-finished").addEventListener("change", renderJobs);
  $("settings-form").addEventListener("submit", saveSettings);
  $("settings-form").addEventListener("input", () => { settingsDirty = true; });
  $("log").addEventListener("scroll", (ev) => { ev.target.dataset.scrolled = "1"; });
  connect();
  refreshSystem();
  refreshModels();
  refreshSettings();
  refreshReports();
  refreshLog();
  setInterval(tickElapsed, 1000);
  setInterval(refreshLog, LOG_POLL_MS);
  setInterval(refreshSystem, SYSTEM_POLL_MS);
  setInterval(refreshReports, 30000);
}

document.addEventListener("DOMContentLoaded", start);
