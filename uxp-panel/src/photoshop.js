"use strict";
/**
 * The Photoshop adapter: the only file that touches the `photoshop` and `uxp`
 * modules. Everything host-specific arrives through createAdapter(host);
 * loadHost() below is the single place that requires them, so tests can pass
 * a recording fake instead.
 *
 * Pixels in: imaging.getPixels at the document's depth (16-bit read full range),
 * only the selection's bounds plus context, padded back where Photoshop trimmed
 * them; the selection through imaging.getSelection as a soft mask.
 * Pixels out: a new layer per result layer inside the "Retouch Bridge" group,
 * imaging.putPixels at the exact bounds, imaging.putLayerMask from the result's
 * mask, all in one executeAsModal scope with history suspended, so the whole
 * operation is one undo step and a failure leaves the document untouched.
 */

const geometry = require("./geometry.js");
const buffers = require("./buffers.js");
const { iccFromJpeg, looksLikeIcc } = require("./icc.js");

const GROUP_NAME = "Retouch Bridge";
const TOKEN_KEY = "retouch-bridge.token";

function loadHost() {
  // eslint-disable-next-line global-require
  return { photoshop: require("photoshop"), uxp: require("uxp") };
}

class HostError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "HostError";
    this.code = code;
  }
}

/** UXP secure storage hands values back as bytes. */
function bytesToString(v) {
  if (v == null) return "";
  if (typeof v === "string") return v;
  let s = "";
  for (let i = 0; i < v.length; i++) s += String.fromCharCode(v[i]);
  return s;
}

function createAdapter(host) {
  const { app, core, imaging, constants, action } = host.photoshop;
  const secure = host.uxp.storage.secureStorage;
  const C = constants;

  // ------------------------------------------------------------ token

  const tokenStore = {
    async get() {
      try { return bytesToString(await secure.getItem(TOKEN_KEY)).trim(); } catch { return ""; }
    },
    async set(token) { await secure.setItem(TOKEN_KEY, String(token).trim()); },
    async clear() { await secure.removeItem(TOKEN_KEY); },
  };

  // ------------------------------------------------------------ recipe files

  /**
   * Ask the user for a recipe file (TOML or JSON) with the system's open dialog.
   * Resolves {name, path, format, text}, or null when the dialog was cancelled.
   * Needs "localFileSystem": "request" in the manifest.
   */
  async function pickRecipeFile() {
    const storage = host.uxp.storage;
    const file = await storage.localFileSystem.getFileForOpening({ types: ["toml", "json"] });
    if (!file) return null;
    const text = await file.read({ format: storage.formats.utf8 });
    const name = file.name || String(file.nativePath || "recipe").split(/[\\/]/).pop();
    return {
      name,
      path: file.nativePath || name,
      format: /\.json$/i.test(name) ? "json" : "toml",
      text: typeof text === "string" ? text : new TextDecoder().decode(text),
    };
  }

  // ------------------------------------------------------------ document facts

  function depthOf(doc) {
    const bpc = doc.bitsPerChannel;
    if (bpc === C.BitsPerChannelType.EIGHT) return 8;
    if (bpc === C.BitsPerChannelType.SIXTEEN) return 16;
    if (bpc === C.BitsPerChannelType.THIRTYTWO) return 32;
    const n = parseInt(String(bpc).replace(/\D+/g, ""), 10);
    if (n === 8 || n === 16 || n === 32) return n;
    throw new HostError("unsupported_mode", `unsupported bit depth ${bpc}: convert to 8 or 16 bits per channel`);
  }

  function colorSpaceOf(doc) {
    if (doc.mode === C.DocumentMode.RGB) return "RGB";
    if (doc.mode === C.DocumentMode.GRAYSCALE) return "Grayscale";
    throw new HostError("unsupported_mode",
      "Retouch Bridge works on RGB and Grayscale documents: convert with Image › Mode › RGB Color first");
  }

  /**
   * Profile names as createImageDataFromBuffer wants them (no linear suffix on
   * 32-bit); "" for none. Photoshop names an untagged document's profile "None",
   * which createImageDataFromBuffer would refuse as a profile name.
   */
  function cleanProfile(name) {
    const s = name ? String(name).trim() : "";
    if (!s || s === "None") return "";
    return s.replace(/\s*\((Linear|Linear RGB Profile|Linear Gray Profile)[^)]*\)\s*$/, "");
  }

  /** The selection's bounds as a rect, or null when nothing is selected. */
  async function selectionBounds(doc) {
    let b = null;
    try { b = doc.selection ? await doc.selection.bounds : null; } catch { b = null; }
    const r = b ? geometry.fromPs(b) : null;
    return r && !geometry.isEmpty(r) ? r : null;
  }

  function activeDocument() {
    const doc = app.activeDocument;
    if (!doc) throw new HostError("no_document", "open a document first");
    return doc;
  }

  /** Facts for the panel's target line; null without a document. Reads only. */
  async function documentSummary() {
    const doc = app.activeDocument;
    if (!doc) return null;
    let depth = null;
    try { depth = depthOf(doc); } catch { depth = null; }
    return {
      id: doc.id,
      name: doc.title || doc.name,
      width: doc.width,
      height: doc.height,
      depth,
      mode: doc.mode,
      profile: cleanProfile(doc.colorProfileName),
      selection: await selectionBounds(doc),
      activeLayer: doc.activeLayers && doc.activeLayers.length ? doc.activeLayers[0].name : null,
    };
  }

  /** Call fn when the document or selection may have changed (for the target line). */
  function onDocumentChange(fn) {
    if (!action || !action.addNotificationListener) return () => {};
    const events = ["select", "set", "open", "close", "make", "delete", "historyStateChanged"];
    const listener = () => fn();
    action.addNotificationListener(events, listener);
    return () => action.removeNotificationListener(events, listener);
  }

  // ------------------------------------------------------------ pixels in

  /**
   * What an operation sends: the region (selection + context, or the whole
   * source), its pixels padded to the region, the selection as an 8-bit mask.
   * opts: {source: "merged"|"layer", mask: "none"|"optional"|"required", resizes, padding}
   */
  async function readInput(doc, opts) {
    const depth = depthOf(doc);
    const colorSpace = colorSpaceOf(doc);
    const docExtent = { width: doc.width, height: doc.height };
    const selection = await selectionBounds(doc);
    if (!selection && opts.mask === "required") {
      throw new HostError("selection_required",
        "this operation works on the selection: select the area first (for example with the Lasso tool)");
    }
    const layer = opts.source === "layer" ? (doc.activeLayers && doc.activeLayers[0]) : null;
    if (opts.source === "layer" && !layer) throw new HostError("no_layer", "select a layer first");

    let region;
    if (selection) {
      // Upscale takes exactly what is selected; the others get surroundings to blend in.
      region = opts.resizes
        ? geometry.clampToExtent(selection, docExtent)
        : geometry.selectionRegion(selection, docExtent, opts.padding);
    } else if (layer) {
      region = geometry.clampToExtent(geometry.fromPs(layer.boundsNoEffects || layer.bounds), docExtent);
    } else {
      region = geometry.rect(0, 0, docExtent.width, docExtent.height);
    }
    if (geometry.isEmpty(region)) throw new HostError("empty_source", "the layer has no pixels there");

    const request = {
      documentID: doc.id,
      sourceBounds: geometry.toPs(region),
      componentSize: depth,
      colorSpace,
    };
    if (layer) request.layerID = layer.id;
    let got;
    try {
      got = await imaging.getPixels(request);
    } catch (e) {
      if (!layer) throw e;
      throw new HostError("no_pixels",
        `the layer "${layer.name}" has no pixels here (a group, adjustment or empty layer?): pick a pixel layer or use Merged visible`);
    }
    const imageData = got.imageData;
    let data;
    let channels;
    let profile;
    try {
      data = await imageData.getData({ chunky: true, fullRange: depth === 16 });
      channels = imageData.components;
      profile = cleanProfile(imageData.colorProfile || doc.colorProfileName);
    } finally {
      imageData.dispose();
    }
    const gotRect = got.sourceBounds ? geometry.fromPs(got.sourceBounds) : region;
    const padded = buffers.padTrimmed(data, gotRect, region, channels, depth);

    let selectionMask = null;
    if (selection && !opts.resizes) {
      const sel = await imaging.getSelection({ documentID: doc.id, sourceBounds: geometry.toPs(region) });
      try {
        const raw = await sel.imageData.getData({ chunky: true, fullRange: true });
        const mask8 = buffers.selectionTo8(raw, sel.imageData.componentSize || 8, { fullRange: true });
        const selRect = sel.sourceBounds ? geometry.fromPs(sel.sourceBounds) : region;
        selectionMask = buffers.reframe(mask8, selRect, region, 1, 0);
      } finally {
        sel.imageData.dispose();
      }
      if (buffers.isBlank(selectionMask)) {
        throw new HostError("selection_required", "the selection is empty (fully feathered away?): select the area again");
      }
    }

    return {
      documentID: doc.id,
      documentName: doc.title || doc.name,
      resolution: doc.resolution,
      docExtent,
      depth,
      colorSpace,
      profile,
      region,
      selection,
      image: { data: padded.data, width: region.width, height: region.height, channels: padded.channels },
      // Sent to the bridge only when the operation takes a mask.
      mask: selectionMask && opts.mask !== "none" ? { data: selectionMask, width: region.width, height: region.height } : null,
      selectionMask,
    };
  }

  // ------------------------------------------------------------ colour profile

  const iccCache = new Map();

  /**
   * The document profile's ICC bytes. UXP exposes only its name, so: a 1x1
   * document in that profile, saved as a JPEG with the profile embedded into
   * the plugin's temporary folder, read back and closed. Once per profile; any
   * failure just means no profile is sent (pixels are never converted anyway).
   */
  async function profileBytes(ctx, doc, colorSpace, profile) {
    if (!cleanProfile(profile)) return null;
    const key = `${colorSpace}|${profile}`;
    if (iccCache.has(key)) return iccCache.get(key);
    const storage = host.uxp.storage;
    let bytes = null;
    let probe = null;
    try {
      const folder = await storage.localFileSystem.getTemporaryFolder();
      const file = await folder.createFile("retouch-bridge-profile.jpg", { overwrite: true });
      probe = await app.createDocument({
        name: "Retouch Bridge profile", width: 1, height: 1, resolution: 72, depth: 8, profile,
        mode: colorSpace === "RGB" ? C.NewDocumentMode.RGB : C.NewDocumentMode.GRAYSCALE,
        fill: C.DocumentFill.WHITE,
      });
      await ctx.hostControl.registerAutoCloseDocument(probe.id);
      await probe.saveAs.jpg(file, { quality: 1, embedColorProfile: true }, true);
      const data = await file.read({ format: storage.formats.binary });
      const found = iccFromJpeg(new Uint8Array(data));
      bytes = looksLikeIcc(found) ? found : null;
      try { await file.delete(); } catch { /* the temp folder is cleared anyway */ }
    } catch {
      bytes = null;
    } finally {
      if (probe) {
        try { await ctx.hostControl.unregisterAutoCloseDocument(probe.id); } catch { /* closed already */ }
        try { probe.closeWithoutSaving(); } catch { /* nothing to close */ }
        app.activeDocument = doc;
      }
    }
    iccCache.set(key, bytes);
    return bytes;
  }

  // ------------------------------------------------------------ pixels out

  async function findGroup(doc) {
    for (const l of doc.layers) {
      if (l.name === GROUP_NAME && l.kind === C.LayerKind.GROUP) return l;
    }
    return null;
  }

  /** The "Retouch Bridge" group, created once per document at the top of the stack. */
  async function ensureGroup(doc) {
    const existing = await findGroup(doc);
    if (existing) return existing;
    const group = await doc.createLayerGroup({ name: GROUP_NAME });
    // Photoshop's DOM hands out a new wrapper on every access: compare layers by id.
    const top = doc.layers[0];
    if (top && top.id !== group.id) await group.move(top, C.ElementPlacement.PLACEBEFORE);
    return group;
  }

  /** Pixels (any depth the bridge sent) as the document wants them. */
  function toDocumentPixels(layer, input) {
    let data = buffers.convertDepth(layer.data, layer.depth, input.depth);
    let channels = layer.channels;
    const wantColor = input.colorSpace === "RGB" ? 3 : 1;
    const hasAlpha = channels === wantColor + 1;
    if (channels !== wantColor && !hasAlpha) {
      throw new HostError("invalid_input", `the bridge sent ${channels} channels for a ${input.colorSpace} document`);
    }
    return { data, channels };
  }

  function imageOptions(width, height, components, depth, colorSpace, profile) {
    const opts = { width, height, components, chunky: true, colorSpace };
    if (profile) opts.colorProfile = profile;
    if (depth === 16) opts.fullRange = true;
    return opts;
  }

  async function putMask(documentID, layerID, mask8, rect, depth, commandName) {
    const data = depth === 8 ? mask8 : buffers.convertDepth(mask8, 8, depth);
    const maskData = await imaging.createImageDataFromBuffer(
      data, imageOptions(rect.width, rect.height, 1, depth, "Grayscale", "Gray Gamma 2.2"));
    try {
      await imaging.putLayerMask({
        documentID, layerID, imageData: maskData, replace: true,
        targetBounds: { left: rect.x, top: rect.y }, commandName,
      });
    } finally {
      maskData.dispose();
    }
  }

  /**
   * One pixel layer per result layer inside the group; the first listed ends on
   * top and visible, variations below it hidden. Returns the created layers.
   */
  async function placeLayers(doc, input, run, { title, names }) {
    const group = await ensureGroup(doc);
    const created = [];
    // Create bottom-up so that the first result layer ends on top of the group.
    for (let i = run.layers.length - 1; i >= 0; i--) {
      const layer = run.layers[i];
      // Result bounds are in the region we sent; the document is offset by the region's corner.
      const target = geometry.translate(layer.bounds, input.region.x, input.region.y);
      const clipped = geometry.clampToExtent(target, input.docExtent);
      if (geometry.isEmpty(clipped)) continue;
      const px = toDocumentPixels(layer, input);
      const data = geometry.equals(clipped, target) ? px.data : buffers.reframe(px.data, target, clipped, px.channels);
      const psLayer = await doc.createPixelLayer({ name: names[i] });
      await psLayer.move(group, C.ElementPlacement.PLACEINSIDE);
      const imageData = await imaging.createImageDataFromBuffer(
        data, imageOptions(clipped.width, clipped.height, px.channels, input.depth, input.colorSpace, input.profile));
      try {
        await imaging.putPixels({
          documentID: doc.id, layerID: psLayer.id, imageData, replace: true,
          targetBounds: { left: clipped.x, top: clipped.y }, commandName: title,
        });
      } finally {
        imageData.dispose();
      }
      // The result's own mask wins; otherwise the selection keeps the edit inside it.
      let mask = null;
      if (layer.mask) mask = buffers.reframe(layer.mask, target, clipped, 1, 0);
      else if (input.selectionMask) mask = buffers.reframe(input.selectionMask, input.region, clipped, 1, 0);
      if (mask) await putMask(doc.id, psLayer.id, mask, clipped, input.depth, title);
      psLayer.visible = layer.visible;
      created.unshift({ id: psLayer.id, name: names[i], bounds: clipped, masked: !!mask, visible: layer.visible });
    }
    return { kind: "layers", group: GROUP_NAME, layers: created };
  }

  /** Results that change the size (upscale) become a new document of the result's size. */
  async function openAsDocument(ctx, input, run, { title, names }) {
    const layer = run.layers[0];
    if (!layer) throw new HostError("invalid_input", "the bridge returned no layers");
    const extent = run.extent || { width: layer.bounds.x + layer.bounds.width, height: layer.bounds.y + layer.bounds.height };
    const newDoc = await app.createDocument({
      name: names[0],
      width: extent.width,
      height: extent.height,
      resolution: input.resolution,
      mode: input.colorSpace === "RGB" ? C.NewDocumentMode.RGB : C.NewDocumentMode.GRAYSCALE,
      fill: C.DocumentFill.TRANSPARENT,
      depth: input.depth,
      profile: input.profile || undefined,
    });
    // If anything below fails or the user cancels, Photoshop closes the half-made document.
    await ctx.hostControl.registerAutoCloseDocument(newDoc.id);
    const target = newDoc.layers[0];
    target.name = names[0];
    const px = toDocumentPixels(layer, input);
    const imageData = await imaging.createImageDataFromBuffer(
      px.data, imageOptions(layer.width, layer.height, px.channels, input.depth, input.colorSpace, input.profile));
    try {
      await imaging.putPixels({
        documentID: newDoc.id, layerID: target.id, imageData, replace: true,
        targetBounds: { left: layer.bounds.x, top: layer.bounds.y }, commandName: title,
      });
    } finally {
      imageData.dispose();
    }
    if (layer.mask) await putMask(newDoc.id, target.id, layer.mask, layer.bounds, input.depth, title);
    await ctx.hostControl.unregisterAutoCloseDocument(newDoc.id);
    return { kind: "document", documentID: newDoc.id, name: names[0], width: extent.width, height: extent.height };
  }

  // ------------------------------------------------------------ the modal operation

  /**
   * Run one panel operation as one modal, undoable step.
   *   title: history/progress name; op: the bridge's capability entry;
   *   execute(input, ctl): does the bridge work, resolves {layers, extent, ...}
   *     ctl = {progress(value, message), onCancel(fn), isCancelled()}
   *   names(run, input): layer (or new document) names for the result layers.
   * op.resizes: "auto" (recipes): read like an in-place op, and open the result
   * as a new document only when its size differs from the region sent.
   */
  async function runOperation({ title, op, source = "merged", padding, execute, names }) {
    let outcome = null;
    const body = async (ctx) => {
      const doc = activeDocument();
      const cancelHandlers = [];
      // Photoshop's own progress dialog has a Cancel button: route it to the bridge job.
      ctx.onCancel = () => { for (const fn of cancelHandlers) fn(); };
      const progress = (value, message) => {
        try {
          ctx.reportProgress({ value: Math.max(0, Math.min(1, value)), commandName: message ? `${title} — ${message}` : title });
        } catch { /* progress is cosmetic */ }
      };
      progress(0, "reading pixels");
      const resizes = op.resizes === true;
      const input = await readInput(doc, { source, mask: op.mask || "none", resizes, padding });
      input.icc = await profileBytes(ctx, doc, input.colorSpace, input.profile);
      const suspension = resizes ? null
        : await ctx.hostControl.suspendHistory({ documentID: doc.id, name: title });
      let suspended = suspension !== null;
      try {
        const run = await execute(input, {
          progress,
          onCancel: (fn) => cancelHandlers.push(fn),
          isCancelled: () => !!ctx.isCancelled,
        });
        if (ctx.isCancelled) throw new HostError("cancelled", "cancelled in Photoshop");
        const layerNames = names(run, input);
        const newSize = run.extent && (run.extent.width !== input.region.width || run.extent.height !== input.region.height);
        if (resizes || (op.resizes === "auto" && newSize)) {
          // Nothing was changed in the source document: close its history step empty.
          if (suspended) { suspended = false; await ctx.hostControl.resumeHistory(suspension, false); }
          outcome = await openAsDocument(ctx, input, run, { title, names: layerNames });
        } else {
          outcome = await placeLayers(doc, input, run, { title, names: layerNames });
          if (suspended) { suspended = false; await ctx.hostControl.resumeHistory(suspension, true); }
        }
      } catch (e) {
        // Roll the document back to where it was: no half-made group or layer survives.
        if (suspended) {
          try { await ctx.hostControl.resumeHistory(suspension, false); } catch { /* modal exit rolls back too */ }
        }
        throw e;
      }
    };
    try {
      await core.executeAsModal(body, { commandName: title });
    } catch (e) {
      if (e && e.number === 9) {
        throw new HostError("host_busy", "another plugin is running a command in Photoshop: wait for it, then try again");
      }
      throw e;
    }
    return outcome;
  }

  return {
    tokenStore, documentSummary, onDocumentChange, readInput, placeLayers, runOperation, pickRecipeFile,
    ensureGroup, depthOf, colorSpaceOf, GROUP_NAME,
  };
}

module.exports = { createAdapter, loadHost, HostError, GROUP_NAME, TOKEN_KEY };
