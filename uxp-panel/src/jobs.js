"use strict";
/**
 * One panel operation or recipe on the bridge, host-free: submit the job (or one
 * job per variation when the op has no variations parameter; a recipe is one job
 * on POST /v1/recipes/run), follow its progress, and fetch every result layer
 * with its mask. Cancel deletes the running job.
 */

const { BridgeError } = require("./client.js");

/** Only send parameters the operation declares: the bridge refuses unknown names. */
function pickParams(opInfo, wanted) {
  const known = opInfo && opInfo.params && opInfo.params.properties ? opInfo.params.properties : {};
  const out = {};
  for (const [k, v] of Object.entries(wanted)) {
    if (v === undefined || v === null || v === "") continue;
    if (k in known) out[k] = v;
  }
  return out;
}

function randomSeed() {
  return Math.floor(Math.random() * 2147483647);
}

class JobRun {
  /**
   * client: BridgeClient; events: EventStream or null.
   * request: {op: capability object, params, image, mask, icc, variations, seed},
   * or {recipe: TOML/JSON text, image, icc} to run a recipe on the same pixels.
   */
  constructor(client, events, request) {
    this.client = client;
    this.events = events;
    this.request = request;
    this.currentJob = null;
    this.cancelled = false;
    this.jobIds = [];
  }

  /** Ask the bridge to stop; resolves when the DELETE went through. */
  async cancel() {
    this.cancelled = true;
    if (this.currentJob) {
      try { await this.client.cancel(this.currentJob); } catch { /* already ended */ }
    }
  }

  /**
   * Run to the end. onProgress(fraction, message) over all jobs; onJob(id) when one is accepted.
   * Resolves {layers, extent, metadata, seeds, jobIds}, plus `recipe` (its name) for a
   * recipe; layers carry pixels, bounds in the result document, an 8-bit mask or
   * null, and whether they start visible.
   */
  async run({ onProgress = () => {}, onJob = () => {} } = {}) {
    const { op = null, recipe = null, image, mask = null, icc = null } = this.request;
    // A recipe has no op: no seed, no variations, one job.
    const props = (op && op.params && op.params.properties) || {};
    const isRecipe = recipe !== null;
    const label = isRecipe ? "Running the recipe" : op.title || op.name;
    let recipeName = null;
    const variations = Math.max(1, Math.floor(this.request.variations || 1));
    const hasSeed = "seed" in props;
    const baseSeed = hasSeed ? (Number.isInteger(this.request.seed) && this.request.seed >= 0 ? this.request.seed : randomSeed()) : null;
    // An op that makes its own variations gets one job; otherwise one job per seed.
    const nativeVariations = "variations" in props;
    const runs = nativeVariations ? 1 : variations;
    const layers = [];
    let extent = null;
    let metadata = {};
    const seeds = [];
    for (let i = 0; i < runs; i++) {
      if (this.cancelled) throw new BridgeError({ code: "cancelled", message: "the job was cancelled" });
      const seed = hasSeed ? baseSeed + i : null;
      const params = pickParams(op, {
        ...this.request.params,
        ...(hasSeed ? { seed } : {}),
        ...(nativeVariations ? { variations } : {}),
      });
      const span = (f) => (i + f) / runs;
      const accepted = isRecipe
        ? await this.client.runRecipe({ recipe, image, icc })
        : await this.client.submitJob({ op: op.name, params, image, mask, icc });
      if (isRecipe) recipeName = accepted.recipe || null;
      this.currentJob = accepted.id;
      this.jobIds.push(accepted.id);
      onJob(accepted.id);
      if (this.cancelled) await this.cancel();
      const status = await this.client.waitForJob(accepted.id, {
        events: this.events,
        onProgress: (f, msg) => onProgress(span(f * 0.9), msg || label),
      });
      onProgress(span(0.9), "Fetching result");
      const result = status.result || { layers: [] };
      extent = result.extent ? { width: result.extent[0], height: result.extent[1] } : extent;
      metadata = { ...metadata, ...(result.metadata || {}) };
      const resultSeed = hasSeed ? (result.metadata && Number.isInteger(result.metadata.seed) ? result.metadata.seed : seed) : null;
      if (hasSeed) seeds.push(resultSeed);
      // Variations made by separate jobs: only the first job's layers start visible.
      layers.push(...await fetchLayers(this.client, accepted.id, result, { run: i, seed: resultSeed, shown: nativeVariations || i === 0 }));
      this.currentJob = null;
    }
    if (nativeVariations) {
      // The op returned all variations in one result: the first is shown, the rest are hidden siblings.
      let seen = false;
      for (const l of layers) {
        if (l.visible && !seen) seen = true;
        else l.visible = false;
      }
    }
    onProgress(1, "Done");
    const out = { layers, extent, metadata, seeds, jobIds: this.jobIds };
    if (isRecipe) out.recipe = metadata.recipe || recipeName;
    return out;
  }
}

/** Every result layer of a finished job with its pixels and 8-bit mask. */
async function fetchLayers(client, jobId, result, { run = 0, seed = null, shown = true } = {}) {
  const out = [];
  for (const info of result.layers || []) {
    const px = await client.result(jobId, { layer: info.name });
    const m = info.has_mask ? await client.mask(jobId, info.name) : null;
    out.push({
      name: info.name,
      run,
      seed,
      visible: info.visible !== false && shown,
      bounds: px.bounds,
      width: px.width, height: px.height, channels: px.channels, depth: px.depth,
      data: px.data,
      mask: m ? m.data : null,
    });
  }
  return out;
}

module.exports = { JobRun, pickParams, randomSeed, fetchLayers };

function truncate(text, n) {
  const t = String(text).replace(/\s+/g, " ").trim();
  return t.length > n ? `${t.slice(0, n - 1)}…` : t;
}

function formatScale(s) {
  return `${Number(s)}`.replace(/\.0+$/, "");
}

/**
 * Names for the new layers (or the new document), e.g. `AI Fill "blue sky" seed 42`.
 * def: the panel's op entry; params: what the user set; run: JobRun's result;
 * input: the adapter's input (for the document name).
 */
function layerNames(def, params, run, input = {}) {
  const perRun = new Map();
  for (const l of run.layers) perRun.set(l.run, (perRun.get(l.run) || 0) + 1);
  return run.layers.map((l) => {
    let name = def.history;
    if (def.name === "upscale") {
      const base = (input.documentName || "Untitled").replace(/\.[^.]+$/, "");
      return `${base} ×${formatScale(run.metadata.scale || params.scale || "")}`.trim();
    }
    if (params.prompt) name += ` "${truncate(params.prompt, 40)}"`;
    if (l.seed !== null && l.seed !== undefined) name += ` seed ${l.seed}`;
    // Several layers from one job (a retouch with its frequency layers): say which is which.
    if (perRun.get(l.run) > 1 && l.name && l.name !== "image") name += ` · ${l.name}`;
    return name;
  });
}

module.exports.layerNames = layerNames;
module.exports.truncate = truncate;
