"use strict";
/**
 * Wiring: DOM events -> state machine -> view; operations -> adapter + bridge.
 * All decisions live in state.js (what to show), jobs.js (what to send) and
 * photoshop.js (what to do in the document); this file only connects them.
 */

const { BridgeClient, DEFAULT_URL } = require("./client.js");
const { initialState, reduce, viewModel, PANEL_OPS } = require("./state.js");
const { JobRun, layerNames, randomSeed } = require("./jobs.js");
const { createAdapter, loadHost } = require("./photoshop.js");
const { ALLOWED_ORIGINS, originProblem } = require("./origins.js");

const URL_KEY = "retouch-bridge.url";
const RECIPE_KEY = "retouch-bridge.last-recipe";
// A recipe's steps may take a selection's surroundings into account; it takes no
// mask part, so the selection becomes the result's layer mask; a recipe that
// changes the size (standardize) opens its result as a new document.
const RECIPE_OP = Object.freeze({ name: "recipe", mask: "optional", resizes: "auto" });
const PADDING = { ratio: 0.5, min: 64, max: 1024 };

const $ = (id) => document.getElementById(id);

function storage() {
  try { return globalThis.localStorage || null; } catch { return null; }
}

/** Value of a Spectrum picker (UXP's sp-picker, or the dev shim's). */
function pickerValue(el) {
  if (el.value) return String(el.value);
  const item = el.querySelector("sp-menu-item[selected]") || el.querySelector("sp-menu-item");
  return item ? item.getAttribute("value") : "";
}

/** classList.toggle's second argument is not in every UXP version: add/remove only. */
function setClass(el, name, on) {
  if (!el) return;
  if (on) el.classList.add(name);
  else el.classList.remove(name);
}

function setHidden(el, hidden) {
  setClass(el, "hidden", hidden);
}

const all = (selector, root = document) => Array.from(root.querySelectorAll(selector));

/** Text with `code` spans, built as nodes (never innerHTML from messages). */
function setRichText(el, text) {
  el.innerHTML = "";
  String(text).split("`").forEach((part, i) => {
    if (!part) return;
    if (i % 2) {
      const code = document.createElement("code");
      code.textContent = part;
      el.appendChild(code);
    } else {
      el.appendChild(document.createTextNode(part));
    }
  });
}

function setDisabled(el, disabled) {
  if (!el) return;
  if (disabled) el.setAttribute("disabled", "");
  else el.removeAttribute("disabled");
}

/**
 * allowedOrigins: what the host lets the panel reach (the manifest's, in UXP;
 * null where nothing is enforced). makeClient: how a bridge client is made.
 */
function createPanel({ adapter, makeClient = (opts) => new BridgeClient(opts), allowedOrigins = ALLOWED_ORIGINS }) {
  let state = initialState();
  let client = null;
  let events = null;
  let currentRun = null;
  let capabilities = null;

  function dispatch(ev) {
    state = reduce(state, ev);
    render();
  }

  // ---------------------------------------------------------- connection

  /** quiet: a background retry that changes nothing on screen until the bridge answers. */
  async function connect({ quiet = false } = {}) {
    const url = (storage() && storage().getItem(URL_KEY)) || DEFAULT_URL;
    if (events) { const old = events; events = null; old.close(); }
    // UXP would block an origin the manifest does not list, and we would only see
    // "network error": say which port or host is the problem before trying.
    const problem = originProblem(url, allowedOrigins);
    if (problem) {
      client = null;
      if (!quiet) dispatch({ type: "unreachable", error: problem });
      return;
    }
    const token = await adapter.tokenStore.get();
    client = makeClient({ baseUrl: url, token });
    if (!quiet) dispatch({ type: "connect" });
    let health;
    try {
      health = await client.health();
    } catch (error) {
      if (!quiet) dispatch({ type: "unreachable", error });
      return;
    }
    if (!token) { dispatch({ type: "need-token" }); return; }
    try {
      // Before the token goes anywhere: is this the bridge that holds it?
      health = await client.verifyIdentity();
      capabilities = await client.capabilities();
    } catch (error) {
      dispatch(error.code === "unauthorized" ? { type: "unauthorized" }
        : error.code === "impostor" ? { type: "impostor", error } : { type: "unreachable", error });
      return;
    }
    dispatch({ type: "connected", health, capabilities });
    applyCapabilities(capabilities);
    try {
      const stream = await client.events();
      events = stream;
      stream.on("model-progress", (ev) => dispatch(ev));
      // Only a stream we still use going away means the bridge went away.
      stream.on("close", () => {
        if (events !== stream) return;
        events = null;
        dispatch({ type: "disconnected" });
      });
    } catch {
      events = null; // jobs still work by polling
    }
  }

  async function pair() {
    const token = String($("token").value || "").trim();
    const url = String($("bridge-url").value || "").trim();
    if (url && storage()) storage().setItem(URL_KEY, url.replace(/\/+$/, ""));
    if (!token) return;
    await adapter.tokenStore.set(token);
    $("token").value = "";
    await connect();
  }

  /** Show only the controls the bridge's operations accept, with their choices. */
  function applyCapabilities(caps) {
    const ops = {};
    for (const op of caps.operations || []) ops[op.name] = op;
    for (const section of all("[data-op]")) {
      const op = ops[section.getAttribute("data-op")];
      if (!op) continue; // unavailable: keep the full form, dimmed, so users see what is coming
      const props = (op.params && op.params.properties) || {};
      for (const el of all("[data-param]", section)) setHidden(el, !(el.getAttribute("data-param") in props));
    }
    const up = ops.upscale && ops.upscale.params && ops.upscale.params.properties;
    if (up && up.model) fillModelMenu(up.model, caps.models || []);
  }

  /** Upscale engines: the schema's own choices, else auto, Lanczos and the registry's SR models. */
  function fillModelMenu(schema, models) {
    const choices = Array.isArray(schema.enum)
      ? schema.enum.map((name) => ({ name, installed: true }))
      : [{ name: "auto", installed: true }, { name: "lanczos", installed: true },
        ...models.filter((m) => m.task === "upscale")
          .map((m) => ({ name: m.id, title: m.title, installed: m.state === "installed" }))];
    const menu = $("model-menu");
    menu.innerHTML = "";
    for (const choice of choices) {
      const item = document.createElement("sp-menu-item");
      item.setAttribute("value", choice.name);
      const label = choice.name === "lanczos" ? "Lanczos (no AI)"
        : choice.name === "auto" ? "Best installed model" : (choice.title || choice.name);
      // A missing model stays selectable: running it offers the download.
      item.textContent = choice.installed ? label : `${label} (download)`;
      if (choice.name === (schema.default || "lanczos")) item.setAttribute("selected", "");
      menu.appendChild(item);
    }
  }

  // ---------------------------------------------------------- operations

  function paramsFor(name) {
    if (name === "fill") {
      const seedText = String($("seed").value || "").trim();
      return {
        params: {
          prompt: String($("prompt").value || "").trim(),
          negative_prompt: String($("negative").value || "").trim(),
          strength: Number($("strength").value) / 100,
        },
        seed: seedText === "" ? null : Math.max(0, Math.floor(Number(seedText))),
        variations: Number(pickerValue($("variations"))) || 1,
      };
    }
    if (name === "upscale") {
      return { params: { scale: Number(pickerValue($("scale"))) || 2, model: pickerValue($("model")) }, seed: null, variations: 1 };
    }
    return { params: {}, seed: null, variations: 1 };
  }

  async function runOp(name) {
    const def = PANEL_OPS.find((d) => d.name === name);
    const op = state.ops[name];
    if (!def || !op || state.phase !== "idle") return;
    const { params, seed, variations } = paramsFor(name);
    const title = name === "fill" && params.prompt ? `${def.history} "${params.prompt.slice(0, 30)}"` : def.history;
    await perform({
      name, title, op,
      makeRun: (input) => new JobRun(client, events, {
        op, params, image: input.image, mask: input.mask, icc: input.icc, seed, variations,
      }),
      names: (run, input) => layerNames(def, params, run, input),
    });
  }

  /** "Run recipe…": pick a TOML/JSON recipe, run it on the selection (or the source) like an operation. */
  async function runRecipe() {
    if (state.phase !== "idle" || !client) return;
    let picked;
    try {
      picked = await adapter.pickRecipeFile();
    } catch (error) {
      dispatch({ type: "job-failed", error: { code: "recipe_unreadable", message: `cannot read the recipe file: ${error.message || error}` } });
      return;
    }
    if (!picked) return; // the user closed the dialog
    if (storage()) storage().setItem(RECIPE_KEY, picked.path);
    const stem = picked.name.replace(/\.(toml|json)$/i, "");
    const title = `Recipe "${stem}"`;
    await perform({
      name: "recipe", title, op: RECIPE_OP,
      makeRun: (input) => new JobRun(client, events, { recipe: picked.text, image: input.image, icc: input.icc }),
      names: (run) => run.layers.map((l) => {
        const base = `Recipe "${run.recipe || stem}"`;
        return run.layers.length > 1 && l.name ? `${base} · ${l.name}` : base;
      }),
    });
  }

  /** One modal, undoable step in Photoshop around one bridge run (an operation or a recipe). */
  async function perform({ name, title, op, makeRun, names }) {
    dispatch({ type: "job-start", op: name, title });
    try {
      const outcome = await adapter.runOperation({
        title,
        op,
        source: pickerValue($("source")) || "merged",
        padding: PADDING,
        execute: (input, ctl) => {
          currentRun = makeRun(input);
          ctl.onCancel(() => { currentRun.cancel(); });
          return currentRun.run({
            onJob: (jobId) => dispatch({ type: "job-submitted", jobId }),
            onProgress: (value, message) => {
              dispatch({ type: "job-progress", progress: value, message });
              ctl.progress(value, message);
            },
          });
        },
        names,
      });
      const summary = outcome.kind === "document"
        ? `Opened "${outcome.name}" (${outcome.width}×${outcome.height})`
        : `Added ${outcome.layers.length} layer${outcome.layers.length === 1 ? "" : "s"} to "${outcome.group}"`;
      dispatch({ type: "job-done", summary });
    } catch (error) {
      dispatch({ type: "job-failed", error });
    } finally {
      currentRun = null;
      refreshTarget();
    }
  }

  async function cancel() {
    if (!currentRun) return;
    dispatch({ type: "job-cancel-requested" });
    await currentRun.cancel();
  }

  async function onAlertAction() {
    const err = state.error;
    if (!err || !err.action) return;
    if (err.action.kind === "pull-model") {
      try {
        await client.pullModel(err.action.model);
        dispatch({ type: "pull-started", model: err.action.model });
      } catch (error) {
        dispatch({ type: "job-failed", error });
      }
    } else if (err.action.kind === "pair") {
      dispatch({ type: "need-token" });
    } else {
      await connect();
    }
  }

  // ---------------------------------------------------------- target line

  async function refreshTarget() {
    let s = null;
    try { s = await adapter.documentSummary(); } catch { s = null; }
    const line = $("target-line");
    if (!s) { line.textContent = "No document open"; return; }
    const parts = [s.name, `${s.width}×${s.height}`];
    if (s.depth) parts.push(`${s.depth}-bit`);
    parts.push(s.selection ? `selection ${s.selection.width}×${s.selection.height}` : "no selection");
    line.textContent = parts.join(" · ");
    const badge = $("badge-fill");
    setClass(badge, "off", !s.selection);
    badge.textContent = s.selection ? "Selection" : "Needs a selection";
  }

  // ---------------------------------------------------------- view

  function render() {
    const vm = viewModel(state);
    const status = $("status");
    status.setAttribute("data-tone", vm.status.tone);
    status.setAttribute("title", vm.status.detail || vm.status.text);
    $("status-text").textContent = vm.status.text;
    setHidden($("reconnect"), vm.phase !== "disconnected");
    setHidden($("pairing"), !vm.showPairing);

    const alert = $("alert");
    setHidden(alert, !vm.error);
    if (vm.error) {
      alert.setAttribute("data-kind", vm.error.action ? vm.error.action.kind : "none");
      $("alert-title").textContent = vm.error.title;
      setRichText($("alert-message"), vm.error.message);
      const btn = $("alert-action");
      setHidden(btn, !vm.error.action);
      if (vm.error.action) btn.textContent = vm.error.action.label;
    }

    for (const [name, o] of Object.entries(vm.ops)) {
      const btn = document.querySelector(`[data-run="${name}"]`);
      if (!btn) continue;
      setHidden(btn, !o.visible);
      setDisabled(btn, !o.enabled);
      btn.setAttribute("title", o.hint || o.label);
    }
    for (const section of all("[data-op]")) {
      setClass(section, "unavailable", !vm.ops[section.getAttribute("data-op")].available);
    }
    // Hints only once connected: before that the alert or pairing form says what to do.
    const connected = !!state.bridge;
    $("hint-fill").textContent = connected && !vm.ops.fill.available ? vm.ops.fill.hint : "";
    $("hint-upscale").textContent = connected && !vm.ops.upscale.available ? vm.ops.upscale.hint : "";
    const missing = ["remove", "restore-faces", "remove-background"].filter((n) => !vm.ops[n].available);
    $("hint-retouch").textContent = connected && missing.length
      ? `Not in this bridge version yet: ${missing.map((n) => vm.ops[n].label).join(", ")}` : "";

    const progress = $("progress");
    setHidden(progress, !vm.progress);
    if (vm.progress) {
      $("progress-title").textContent = vm.progress.title;
      $("progress-percent").textContent = `${vm.progress.percent}%`;
      $("progress-bar").setAttribute("value", String(vm.progress.percent));
      $("progress-bar").value = vm.progress.percent;
      $("progress-message").textContent = vm.progress.message;
      setDisabled($("cancel"), !vm.progress.canCancel);
    }

    setDisabled($("run-recipe"), !vm.recipe.enabled);
    $("run-recipe").setAttribute("title", vm.recipe.hint || "Run a recipe (TOML or JSON) on the selection");
    const last = storage() && storage().getItem(RECIPE_KEY);
    $("recipe-last").textContent = last ? `Last recipe: ${last}` : "";

    const notice = $("notice");
    setHidden(notice, !vm.notice);
    notice.textContent = vm.notice || "";

    const pulls = $("pulls");
    pulls.innerHTML = "";
    for (const p of vm.pulls) {
      const div = document.createElement("div");
      div.className = "pull";
      div.textContent = p.text;
      pulls.appendChild(div);
    }
  }

  function bind() {
    $("reconnect").addEventListener("click", () => connect());
    $("pair").addEventListener("click", () => pair());
    $("cancel").addEventListener("click", () => cancel());
    $("alert-dismiss").addEventListener("click", () => dispatch({ type: "dismiss" }));
    $("alert-action").addEventListener("click", () => onAlertAction());
    $("run-recipe").addEventListener("click", () => {
      if (!$("run-recipe").hasAttribute("disabled")) runRecipe();
    });
    $("seed-random").addEventListener("click", () => { $("seed").value = String(randomSeed()); });
    const strength = $("strength");
    const showStrength = () => { $("strength-value").textContent = `${Math.round(Number(strength.value))}%`; };
    strength.addEventListener("input", showStrength);
    strength.addEventListener("change", showStrength);
    for (const btn of all("[data-run]")) {
      btn.addEventListener("click", () => {
        if (!btn.hasAttribute("disabled")) runOp(btn.getAttribute("data-run"));
      });
    }
    const url = storage() && storage().getItem(URL_KEY);
    if (url) $("bridge-url").value = url;
    adapter.onDocumentChange(() => refreshTarget());
  }

  let retryTimer = null;

  return {
    start() {
      bind();
      render();
      refreshTarget();
      // While the bridge is down, look for it again now and then (quietly).
      retryTimer = setInterval(() => {
        if (state.phase === "disconnected" && !state.connecting) connect({ quiet: true });
      }, 5000);
      return connect();
    },
    /** Stop retrying and close the event stream (the panel is going away). */
    stop() {
      if (retryTimer) clearInterval(retryTimer);
      retryTimer = null;
      if (events) { const old = events; events = null; old.close(); }
    },
    connect, runOp, runRecipe, cancel, get state() { return state; },
  };
}

let panel = null;

/** Entry point (index.js): the real host modules, once. options: createPanel's (the dev page widens allowedOrigins). */
function start(options = {}) {
  if (panel) return panel;
  panel = createPanel({ adapter: createAdapter(loadHost()), ...options });
  panel.start();
  return panel;
}

module.exports = { start, createPanel };
