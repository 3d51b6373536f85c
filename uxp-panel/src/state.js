"use strict";
/**
 * The panel's state machine, pure: reduce(state, event) -> state, and a view
 * model derived from it. main.js renders the view model; nothing here touches
 * the DOM, the bridge or Photoshop.
 *
 *   disconnected --connected--> idle --job-start--> busy --job-done/cancelled--> idle
 *        |  ^                    |                    \--job-failed--> error --dismiss--> idle
 *        |  '---unreachable------'
 *        '--need-token/unauthorized/impostor--> pairing --(token saved, connected)--> idle
 *
 * "impostor": the server on the port did not prove it holds our token (port squatting,
 * or a bridge with another token); the panel sends it nothing and shows the token form.
 */

const { PROTOCOL } = require("./client.js");

const PHASES = Object.freeze(["disconnected", "pairing", "idle", "busy", "error"]);

/** What the panel offers, in display order. Availability always comes from /v1/capabilities. */
const PANEL_OPS = Object.freeze([
  { name: "fill", label: "AI Fill", history: "AI Fill" },
  { name: "remove", label: "Remove object", history: "Remove object" },
  { name: "upscale", label: "Upscale", history: "Upscale" },
  { name: "restore-faces", label: "Restore faces", history: "Restore faces" },
  { name: "remove-background", label: "Remove background", history: "Remove background" },
  // Shown only once the bridge has it (a later bridge version adds it).
  { name: "skin-retouch", label: "Skin retouch", history: "Skin retouch", hiddenUnlessAvailable: true },
]);

function initialState() {
  return {
    phase: "disconnected",
    connecting: false,
    bridge: null,
    ops: {},
    job: null,
    error: null,
    notice: null,
    pulls: {},
  };
}

function opsFrom(capabilities) {
  const out = {};
  const list = (capabilities && capabilities.operations) || [];
  for (const op of Array.isArray(list) ? list : Object.values(list)) {
    if (op && op.name) out[op.name] = op;
  }
  return out;
}

/** Turn any failure into words that say what happened and what to do next. */
function describeError(err) {
  const code = (err && err.code) || "internal_error";
  const details = (err && err.details) || {};
  const message = (err && err.message) || "";
  switch (code) {
    case "bridge_unreachable":
    case "no_websocket":
      return {
        code, title: "Retouch Bridge is not running",
        message: "Start it from its tray icon or run `retouch-bridge serve`, then click Retry.",
        action: { kind: "retry", label: "Retry" },
      };
    case "origin_not_allowed": {
      const allowedPort = (details.ports && details.ports[0]) || 7847;
      const blocked = details.port && details.hosts && details.hosts.includes(details.host)
        ? `Port ${details.port} is blocked by Photoshop` : "Bridge address not allowed";
      const add = details.port && details.host
        ? ` or add \`http://${details.host}:${details.port}\` and \`ws://${details.host}:${details.port}\` to \`requiredPermissions.network.domains\` in the panel's manifest.json and reload the panel`
        : "";
      return {
        code, title: blocked,
        message: `${message}. Set the address to \`http://127.0.0.1:${allowedPort}\` and start the bridge there (\`retouch-bridge serve --port ${allowedPort}\`)${add ? `,${add}` : ""}.`,
        action: { kind: "pair", label: "Change address" },
      };
    }
    case "unauthorized":
      return {
        code, title: "The bridge refused the pairing token",
        message: "Copy the token from the tray menu (Copy pairing token) or run `retouch-bridge token`, and paste it here again.",
        action: { kind: "pair", label: "Pair again" },
      };
    case "impostor": {
      const port = details.port || "?";
      return {
        code, title: `Not Retouch Bridge on port ${port}`,
        message: `Something else is answering on port ${port} — not Retouch Bridge, or a bridge with another token. Check the token or quit the other program.`,
        action: { kind: "retry", label: "Check again" },
      };
    }
    case "bad_origin":
    case "bad_host":
      return {
        code, title: "The bridge refused this panel",
        message: `${message}. Start the bridge with --allow-origin for this panel's origin.`,
        action: { kind: "retry", label: "Retry" },
      };
    case "protocol_mismatch":
      return {
        code, title: "Panel and bridge do not match",
        message: `The bridge speaks protocol ${details.bridge}, this panel needs ${details.panel}. Update the ${details.bridge < details.panel ? "bridge" : "panel"}.`,
        action: { kind: "retry", label: "Retry" },
      };
    case "recipe_unreadable":
      return { code, title: "Cannot read the recipe", message: `${message}.`, action: null };
    case "model_missing":
      return {
        code, title: details.step ? `Recipe step ${details.step} (${details.op}): model "${details.model || "?"}" is not installed`
          : `Model "${details.model || "?"}" is not installed`,
        message: details.hint || "Download it, then run the operation again.",
        action: details.model ? { kind: "pull-model", label: `Download ${details.model}`, model: details.model } : null,
      };
    case "unknown_operation":
      if (details.step) {
        return {
          code, title: `Recipe step ${details.step}: unknown operation "${details.op}"`,
          message: `${message}. Fix the step's \`op\` in the recipe, or update Retouch Bridge if it is a newer operation.`,
          action: null,
        };
      }
      return {
        code, title: "This bridge cannot do that yet",
        message: `${message}. Update Retouch Bridge to get this operation.`,
        action: { kind: "retry", label: "Check again" },
      };
    case "invalid_params":
      if (details.step) {
        return {
          code, title: `Recipe step ${details.step} (${details.op}) is not valid`,
          message: `${message}. Fix that step in the recipe and run it again.`,
          action: null,
        };
      }
      return {
        code, title: "A setting is out of range",
        message: details.param ? `${message} (check "${details.param}").` : message,
        action: null,
      };
    case "too_large":
      return {
        code, title: "Too large for the bridge",
        message: `${message}. Make a smaller selection, or raise the bridge's size limit.`,
        action: null,
      };
    case "queue_full":
      return {
        code, title: "The bridge is busy",
        message: `Too many jobs are waiting. Try again${err.retryAfter ? ` in ${err.retryAfter} s` : " in a moment"}.`,
        action: { kind: "retry", label: "Retry" },
      };
    case "no_document":
      return { code, title: "No document open", message: "Open an image in Photoshop first.", action: null };
    case "selection_required":
      return {
        code, title: "Make a selection first",
        message: message || "This operation works on the selection: select the area with any selection tool.",
        action: null,
      };
    case "unsupported_mode":
      return { code, title: "Unsupported colour mode", message, action: null };
    case "cancelled":
      return { code, title: "Cancelled", message: "Nothing was changed.", action: null };
    default:
      return {
        code, title: "Something went wrong",
        message: message ? `${message}. Nothing was changed in your document.` : "Nothing was changed in your document.",
        action: null,
      };
  }
}

function reduce(state, ev) {
  switch (ev.type) {
    case "connect":
      return { ...state, connecting: true, notice: null };
    case "need-token":
      return { ...state, phase: "pairing", connecting: false, error: null };
    case "unauthorized":
      return { ...state, phase: "pairing", connecting: false, error: describeError({ code: "unauthorized" }) };
    case "impostor":
      return {
        ...state, phase: "pairing", connecting: false, bridge: null,
        error: describeError(ev.error || { code: "impostor" }),
      };
    case "unreachable":
      return {
        ...state, phase: "disconnected", connecting: false, bridge: null,
        error: describeError(ev.error || { code: "bridge_unreachable" }),
      };
    case "connected": {
      const health = ev.health || {};
      if (health.protocol !== PROTOCOL) {
        return {
          ...state, phase: "disconnected", connecting: false, bridge: null,
          error: describeError({ code: "protocol_mismatch", details: { bridge: health.protocol, panel: PROTOCOL } }),
        };
      }
      return {
        ...state, phase: "idle", connecting: false, error: null,
        bridge: { version: health.version, protocol: health.protocol, device: (ev.capabilities || {}).device || null },
        ops: opsFrom(ev.capabilities),
      };
    }
    case "disconnected":
      if (state.phase === "busy") return state; // the running job reports its own failure
      return { ...state, phase: "disconnected", bridge: null, error: describeError({ code: "bridge_unreachable" }) };
    case "job-start":
      if (state.phase !== "idle") return state;
      return {
        ...state, phase: "busy", error: null, notice: null,
        job: { op: ev.op, title: ev.title, jobId: null, progress: 0, message: "Reading pixels…", cancelling: false },
      };
    case "job-submitted":
      if (!state.job) return state;
      return { ...state, job: { ...state.job, jobId: ev.jobId, message: "Queued" } };
    case "job-progress":
      if (!state.job) return state;
      return {
        ...state,
        job: { ...state.job, progress: Math.max(0, Math.min(1, ev.progress)), message: ev.message || state.job.message },
      };
    case "job-cancel-requested":
      if (!state.job) return state;
      return { ...state, job: { ...state.job, cancelling: true, message: "Cancelling…" } };
    case "job-done":
      return { ...state, phase: "idle", job: null, notice: ev.summary || "Done" };
    case "job-cancelled":
      return { ...state, phase: "idle", job: null, notice: "Cancelled — nothing was changed" };
    case "job-failed": {
      const error = describeError(ev.error);
      if (error.code === "cancelled") return { ...state, phase: "idle", job: null, notice: "Cancelled — nothing was changed" };
      if (error.code === "unauthorized") return { ...state, phase: "pairing", job: null, error };
      if (error.code === "impostor") return { ...state, phase: "pairing", job: null, bridge: null, error };
      if (error.code === "bridge_unreachable") return { ...state, phase: "disconnected", job: null, bridge: null, error };
      return { ...state, phase: "error", job: null, error };
    }
    case "dismiss":
      return { ...state, phase: state.bridge ? "idle" : "disconnected", error: null };
    case "model-progress":
      return { ...state, pulls: { ...state.pulls, [ev.model]: { received: ev.received, total: ev.total, state: ev.state } } };
    case "pull-started":
      return {
        ...state, phase: state.bridge ? "idle" : state.phase, error: null,
        notice: `Downloading ${ev.model}…`,
        pulls: { ...state.pulls, [ev.model]: { received: 0, total: null, state: "downloading" } },
      };
    default:
      return state;
  }
}

function formatBytes(n) {
  if (n == null) return "?";
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(0)} MB`;
  return `${Math.round(n / 1e3)} kB`;
}

/** Everything main.js needs to draw: no logic left for the DOM code. */
function viewModel(state) {
  const connected = !!state.bridge;
  const idle = state.phase === "idle";
  const device = connected && state.bridge.device
    ? (typeof state.bridge.device === "string" ? state.bridge.device : state.bridge.device.name || state.bridge.device.type || "")
    : "";
  const status = state.connecting && !connected ? { tone: "pending", text: "Connecting…" }
    : connected ? {
      tone: "ok",
      text: `Connected · ${state.bridge.version}`,
      detail: `Retouch Bridge ${state.bridge.version}, protocol ${state.bridge.protocol}${device ? `, running on ${device}` : ""}`,
    }
    : state.error && state.error.code === "impostor" ? { tone: "off", text: "Not verified", detail: state.error.message }
    : state.phase === "pairing" ? { tone: "warn", text: "Not paired" }
    : { tone: "off", text: "Not connected" };
  const ops = {};
  for (const def of PANEL_OPS) {
    const cap = state.ops[def.name];
    const available = !!cap;
    ops[def.name] = {
      label: def.label,
      visible: available || !def.hiddenUnlessAvailable,
      available,
      enabled: idle && available,
      needsSelection: !!cap && cap.mask === "required",
      params: cap && cap.params && cap.params.properties ? Object.keys(cap.params.properties) : [],
      hint: !connected ? "Connect to the bridge first"
        : !available ? "Not available in this bridge version" : "",
    };
  }
  const pulls = Object.entries(state.pulls)
    .filter(([, p]) => p.state !== "installed")
    .map(([model, p]) => ({
      model,
      fraction: p.total ? Math.min(1, p.received / p.total) : null,
      text: `${model}: ${p.state}${p.total ? ` ${formatBytes(p.received)} / ${formatBytes(p.total)}` : ""}`,
    }));
  return {
    phase: state.phase,
    status,
    showPairing: state.phase === "pairing",
    ops,
    busy: state.phase === "busy",
    // Recipes name their own operations: the bridge checks them when the recipe is sent.
    recipe: { enabled: idle && connected, hint: connected ? "" : "Connect to the bridge first" },
    progress: state.job ? {
      title: state.job.title,
      value: state.job.progress,
      percent: Math.round(state.job.progress * 100),
      message: state.job.message,
      canCancel: !state.job.cancelling,
    } : null,
    error: state.error,
    notice: state.notice,
    pulls,
  };
}

module.exports = { PHASES, PANEL_OPS, initialState, reduce, viewModel, describeError, opsFrom };
