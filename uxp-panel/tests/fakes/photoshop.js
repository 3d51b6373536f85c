"use strict";
/**
 * The one thin fake of the host: `photoshop` (app, core, imaging, action,
 * constants) and `uxp` (storage: secureStorage, the temporary folder and the
 * open dialog, getFileForOpening). It records every call and
 * models only what the adapter relies on:
 *   - getPixels trims its answer to where a layer has pixels (like Photoshop);
 *   - like Photoshop's DOM, every access (app.activeDocument, app.documents,
 *     doc.layers, group.layers, activeLayers, parent, createPixelLayer's answer)
 *     hands back a NEW wrapper object for the same layer or document: compare
 *     them by `.id`, never by identity;
 *   - an untagged document's colorProfileName is "None", and
 *     createImageDataFromBuffer/createDocument refuse profile names Photoshop
 *     does not know (such as "None");
 *   - 16-bit data is held full range; getData without fullRange gives 0..32768;
 *   - document changes need a modal scope; without a history suspension each
 *     change is its own history state; resumeHistory(id, false) restores the
 *     layer tree; an exception leaving executeAsModal rolls back open suspensions
 *     and closes documents registered for auto-close.
 * Used by the adapter tests and by the dev page (dev/), never by the panel.
 */

const constants = Object.freeze({
  BitsPerChannelType: { ONE: "bitDepth1", EIGHT: "bitDepth8", SIXTEEN: "bitDepth16", THIRTYTWO: "bitDepth32" },
  DocumentMode: { RGB: "RGBColorMode", GRAYSCALE: "grayscaleMode", CMYK: "CMYKColorMode", LAB: "labColorMode" },
  NewDocumentMode: { RGB: "RGBColorMode", GRAYSCALE: "grayscaleMode", CMYK: "CMYKColorMode", LAB: "labColorMode" },
  DocumentFill: { TRANSPARENT: "transparent", WHITE: "white", BLACK: "black" },
  ElementPlacement: {
    PLACEINSIDE: "placeInside", PLACEBEFORE: "placeBefore", PLACEAFTER: "placeAfter",
    PLACEATBEGINNING: "placeAtBeginning", PLACEATEND: "placeAtEnd",
  },
  LayerKind: { GROUP: "group", NORMAL: "pixel", PIXEL: "pixel" },
});

const DEPTH_CONST = { 8: constants.BitsPerChannelType.EIGHT, 16: constants.BitsPerChannelType.SIXTEEN, 32: constants.BitsPerChannelType.THIRTYTWO };
const ArrayFor = { 8: Uint8Array, 16: Uint16Array, 32: Float32Array };

const psBounds = (r) => ({ left: r.x, top: r.y, right: r.x + r.width, bottom: r.y + r.height });
function fromPs(b) {
  if (b.right !== undefined) return { x: b.left, y: b.top, width: b.right - b.left, height: b.bottom - b.top };
  return { x: b.left, y: b.top, width: b.width, height: b.height };
}
function intersect(a, b) {
  const x = Math.max(a.x, b.x), y = Math.max(a.y, b.y);
  const x1 = Math.min(a.x + a.width, b.x + b.width), y1 = Math.min(a.y + a.height, b.y + b.height);
  return { x, y, width: Math.max(0, x1 - x), height: Math.max(0, y1 - y) };
}
function crop(data, from, to, channels) {
  const out = new data.constructor(to.width * to.height * channels);
  for (let y = 0; y < to.height; y++) {
    const s = ((to.y - from.y + y) * from.width + (to.x - from.x)) * channels;
    out.set(data.subarray(s, s + to.width * channels), y * to.width * channels);
  }
  return out;
}

class FakeImageData {
  constructor(data, { width, height, components, depth, colorSpace, colorProfile }) {
    this.width = width;
    this.height = height;
    this.components = components;
    this.componentSize = depth;
    this.colorSpace = colorSpace;
    this.colorProfile = colorProfile || "";
    this.hasAlpha = colorSpace === "Grayscale" ? components === 2 : components === 4;
    this.isChunky = true;
    this.type = "image/uncompressed";
    this._data = data; // 16-bit held full range
    this.disposed = false;
  }

  async getData({ chunky = true, fullRange = false } = {}) {
    if (this.disposed) throw new Error("imageData was disposed");
    if (!chunky) throw new Error("fake supports chunky data only");
    if (this.componentSize !== 16 || fullRange) return this._data.slice();
    return Uint16Array.from(this._data, (v) => Math.round((v * 32768) / 65535));
  }

  dispose() { this.disposed = true; }
}

let ids = 1000;

// Fresh wrappers per access, like UXP's DOM: reads, writes and method calls go
// to the one record behind them, but `a === b` is false for two accesses.
const WRAP = {
  get(target, prop) {
    const v = Reflect.get(target, prop, target);
    return typeof v === "function" ? v.bind(target) : v;
  },
  set(target, prop, value) { return Reflect.set(target, prop, value, target); },
};
const wrap = (record) => (record ? new Proxy(record, WRAP) : record);

/** Profile names this fake's Photoshop has installed; anything else is refused like an unknown profile. */
const KNOWN_PROFILES = new Set([
  "sRGB IEC61966-2.1", "Adobe RGB (1998)", "ProPhoto RGB", "Display P3", "Image P3", "Apple RGB",
  "ColorMatch RGB", "Gray Gamma 1.8", "Gray Gamma 2.2", "Dot Gain 10%", "Dot Gain 15%",
  "Dot Gain 20%", "Dot Gain 25%", "Dot Gain 30%", "Generic Gray Profile",
]);
function checkProfile(name) {
  if (name === undefined || name === null) return;
  if (!KNOWN_PROFILES.has(name)) throw new Error(`invalid color profile "${name}"`);
}

/** A stand-in ICC profile for a profile name: right size field, 'acsp' signature, the name inside. */
function fakeIccFor(name) {
  const text = Buffer.from(String(name), "utf8");
  const out = new Uint8Array(132 + text.length);
  const n = out.length;
  out.set([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255], 0);
  out.set([0x61, 0x63, 0x73, 0x70], 36);
  out.set(text, 132);
  return out;
}

/** What Photoshop's JPEG writer puts before the image data when embedding a profile (headers only). */
function jpegWithIcc(icc) {
  const body = Buffer.concat([Buffer.from("ICC_PROFILE\0", "latin1"), Buffer.from([1, 1]), Buffer.from(icc)]);
  const len = body.length + 2;
  return new Uint8Array(Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe2, len >> 8, len & 255]), body, Buffer.from([0xff, 0xd9])]));
}

class FakeLayer {
  constructor(doc, { name, kind = constants.LayerKind.PIXEL, id = ++ids }) {
    this._doc = doc;
    this.id = id;
    this.name = name;
    this.kind = kind;
    this.visible = true;
    this._layers = kind === constants.LayerKind.GROUP ? [] : null;
    this.pixels = null; // {rect, data, channels, depth}
    this.mask = null; // {rect, data, depth}
  }

  get parent() { return wrap(this._doc._parentOf(this)); }

  get layers() { return this._layers ? this._layers.map(wrap) : null; }

  get bounds() {
    const r = this.pixels ? this.pixels.rect : { x: 0, y: 0, width: 0, height: 0 };
    return psBounds(r);
  }

  get boundsNoEffects() { return this.bounds; }

  async move(relative, placement) {
    this._doc._host._record("layer.move", { id: this.id, relative: relative.id, placement });
    // Photoshop resolves the target by id; wrappers are never the same object.
    const target = relative && this._doc.layerById(relative.id);
    if (!target) throw new Error("move: no such layer");
    if (target === this) throw new Error("a layer cannot be moved relative to itself");
    this._doc._mutate("Move");
    this._doc._detach(this);
    const C = constants.ElementPlacement;
    if (placement === C.PLACEINSIDE) {
      if (target.kind !== constants.LayerKind.GROUP) throw new Error("placeInside needs a group");
      target._layers.unshift(this);
    } else {
      const list = this._doc._listOf(target);
      const at = list.indexOf(target);
      list.splice(placement === C.PLACEAFTER ? at + 1 : at, 0, this);
    }
  }

  async delete() {
    this._doc._mutate("Delete Layer");
    this._doc._detach(this);
  }

  _clone(doc) {
    const c = new FakeLayer(doc, { name: this.name, kind: this.kind, id: this.id });
    c.visible = this.visible;
    c.pixels = this.pixels;
    c.mask = this.mask;
    if (this._layers) c._layers = this._layers.map((l) => l._clone(doc));
    return c;
  }
}

class FakeDocument {
  constructor(host, opts) {
    this._host = host;
    this.id = opts.id || ++ids;
    this.title = opts.title || "Untitled-1";
    this.name = this.title;
    this.width = opts.width;
    this.height = opts.height;
    this.resolution = opts.resolution || 72;
    this._depth = opts.depth || 8;
    this.bitsPerChannel = DEPTH_CONST[this._depth];
    this.mode = opts.mode || constants.DocumentMode.RGB;
    this.colorProfileName = opts.untagged ? "None" : opts.profile || "sRGB IEC61966-2.1";
    this.historyStates = [{ name: "Open" }];
    this._layers = [];
    this._selection = opts.selection || null; // {data: Uint8Array W*H} or null
    this._activeLayers = [];
    // The merged image: where it has pixels, and the pixels (full range at 16-bit).
    this._composite = opts.composite || null; // {rect, data, channels}
  }

  get selection() {
    const doc = this;
    return {
      get bounds() {
        const s = doc._selection;
        if (!s) return null;
        let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
        for (let y = 0; y < doc.height; y++) {
          for (let x = 0; x < doc.width; x++) {
            if (s.data[y * doc.width + x]) {
              x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
            }
          }
        }
        return x1 < 0 ? null : { left: x0, top: y0, right: x1 + 1, bottom: y1 + 1 };
      },
    };
  }

  get layers() { return this._layers.map(wrap); }

  get activeLayers() { return this._activeLayers.map(wrap); }

  /** Every layer record, depth first, groups included (for tests; not Photoshop API). */
  allLayers() {
    const out = [];
    const walk = (list) => { for (const l of list) { out.push(l); if (l._layers) walk(l._layers); } };
    walk(this._layers);
    return out;
  }

  layerById(id) { return this.allLayers().find((l) => l.id === id) || null; }

  _listOf(layer) {
    const p = this._parentOf(layer);
    return p ? p._layers : this._layers;
  }

  _parentOf(layer) {
    return this.allLayers().find((l) => l._layers && l._layers.includes(layer)) || null;
  }

  _detach(layer) {
    const list = this._listOf(layer);
    const at = list.indexOf(layer);
    if (at >= 0) list.splice(at, 1);
  }

  /** A document change: needs a modal scope; one history state unless suspended. */
  _mutate(what) {
    const host = this._host;
    if (!host._modal) throw new Error(`"${what}" needs executeAsModal`);
    const s = host._suspensions.find((x) => x.doc === this && x.open);
    if (s) s.changed = true;
    else this.historyStates.push({ name: what });
  }

  async _createLayer(opts, kind) {
    this._mutate(kind === constants.LayerKind.GROUP ? "New Group" : "New Layer");
    const layer = new FakeLayer(this, { name: opts.name || (kind === constants.LayerKind.GROUP ? "Group 1" : "Layer 1"), kind });
    const active = this._activeLayers[0];
    const list = active ? this._listOf(active) : this._layers;
    const at = active ? list.indexOf(active) : 0;
    list.splice(Math.max(0, at), 0, layer);
    this._activeLayers = [layer];
    return wrap(layer);
  }

  async createPixelLayer(opts = {}) {
    this._host._record("document.createPixelLayer", { documentID: this.id, ...opts });
    return this._createLayer(opts, constants.LayerKind.PIXEL);
  }

  async createLayerGroup(opts = {}) {
    this._host._record("document.createLayerGroup", { documentID: this.id, ...opts });
    return this._createLayer(opts, constants.LayerKind.GROUP);
  }

  get saveAs() {
    const doc = this;
    return {
      async jpg(entry, opts = {}, asCopy = false) {
        doc._host._record("document.saveAs.jpg", { documentID: doc.id, name: entry.name, ...opts, asCopy });
        entry._data = opts.embedColorProfile ? jpegWithIcc(fakeIccFor(doc.colorProfileName)) : jpegWithIcc(new Uint8Array(0)).subarray(0, 2);
      },
    };
  }

  closeWithoutSaving() {
    const host = this._host;
    host._record("document.closeWithoutSaving", { documentID: this.id });
    host._docs = host._docs.filter((d) => d !== this);
    if (host._active === this) host._active = host._docs[host._docs.length - 1] || null;
  }
}

function createFakeHost() {
  const host = {
    calls: [],
    progress: [],
    imageDatas: [],
    _docs: [],
    _active: null,
    _modal: null,
    _suspensions: [],
    _failures: new Map(),
    _listeners: [],
    _record(fn, args) {
      host.calls.push({ fn, args });
      const err = host._failures.get(fn);
      if (err) { host._failures.delete(fn); throw err; }
    },
    /** The next call of `fn` (e.g. "imaging.putLayerMask") throws `error`. */
    failNext(fn, error) { host._failures.set(fn, error); },
    /** What the next open dialogs answer: {name, nativePath, text}, or null for Cancel. */
    choosePick(file) { host._pick = { file }; },
    /** The user presses Cancel in Photoshop's progress dialog. */
    cancelModal() {
      if (!host._modal) return;
      host._modal.isCancelled = true;
      if (typeof host._modal.onCancel === "function") host._modal.onCancel();
    },
    notify(event) { for (const l of host._listeners) if (l.events.includes(event)) l.fn(event, {}); },
    callsTo(fn) { return host.calls.filter((c) => c.fn === fn); },
    /** Open a document; returns the record itself (the test's handle), not a wrapper. */
    addDocument(opts) {
      const doc = new FakeDocument(host, opts);
      host._docs.push(doc);
      host._active = doc;
      return doc;
    },
  };

  const app = {
    get activeDocument() { return wrap(host._active); },
    set activeDocument(doc) {
      const found = doc && host._docs.find((d) => d.id === doc.id);
      if (!found) throw new Error("not an open document");
      host._active = found;
    },
    get documents() { return host._docs.map(wrap); },
    async createDocument(opts) {
      host._record("app.createDocument", opts);
      if (!host._modal) throw new Error("createDocument needs executeAsModal");
      checkProfile(opts.profile);
      const doc = new FakeDocument(host, {
        title: opts.name, width: opts.width, height: opts.height, resolution: opts.resolution,
        depth: opts.depth, mode: opts.mode, profile: opts.profile,
      });
      const layer = new FakeLayer(doc, { name: "Layer 1" });
      doc._layers.push(layer);
      doc._activeLayers = [layer];
      host._docs.push(doc);
      host._active = doc;
      return wrap(doc);
    },
  };

  function docById(id) {
    const doc = id == null || id < 0 ? host._active : host._docs.find((d) => d.id === id);
    if (!doc) throw new Error(`no document ${id}`);
    return doc;
  }

  const imaging = {
    async getPixels(opts) {
      host._record("imaging.getPixels", opts);
      const doc = docById(opts.documentID);
      const depth = doc._depth;
      if (opts.componentSize && opts.componentSize !== -1 && opts.componentSize !== depth) {
        throw new Error("fake: depth conversion in getPixels is not modelled");
      }
      let source;
      if (opts.layerID != null) {
        const layer = doc.layerById(opts.layerID);
        if (!layer || !layer.pixels) throw new Error("the layer has no pixels");
        source = layer.pixels;
      } else {
        source = doc._composite;
      }
      const want = opts.sourceBounds ? fromPs(opts.sourceBounds) : { x: 0, y: 0, width: doc.width, height: doc.height };
      // Photoshop trims the answer to where there are pixels.
      const got = intersect(want, source.rect);
      if (got.width === 0 || got.height === 0) throw new Error("no pixels in the requested bounds");
      const data = crop(source.data, source.rect, got, source.channels);
      const imageData = new FakeImageData(data, {
        width: got.width, height: got.height, components: source.channels, depth,
        colorSpace: doc.mode === constants.DocumentMode.GRAYSCALE ? "Grayscale" : "RGB",
        // An untagged document's pixels come without a profile name.
        colorProfile: doc.colorProfileName === "None" ? "" : doc.colorProfileName,
      });
      host.imageDatas.push(imageData);
      return { imageData, sourceBounds: psBounds(got), level: 0 };
    },

    async getSelection(opts) {
      host._record("imaging.getSelection", opts);
      const doc = docById(opts.documentID);
      if (!doc._selection) throw new Error("no selection");
      const full = { x: 0, y: 0, width: doc.width, height: doc.height };
      const want = opts.sourceBounds ? intersect(fromPs(opts.sourceBounds), full) : full;
      const data = crop(doc._selection.data, full, want, 1);
      const imageData = new FakeImageData(data, {
        width: want.width, height: want.height, components: 1, depth: 8, colorSpace: "Grayscale",
      });
      host.imageDatas.push(imageData);
      return { imageData, sourceBounds: psBounds(want) };
    },

    async createImageDataFromBuffer(data, opts) {
      host._record("imaging.createImageDataFromBuffer", { ...opts, type: data.constructor.name, length: data.length });
      const depth = data instanceof Uint8Array ? 8 : data instanceof Uint16Array ? 16 : data instanceof Float32Array ? 32 : 0;
      if (!depth) throw new Error("imageData must be Uint8Array, Uint16Array or Float32Array");
      if (data.length !== opts.width * opts.height * opts.components) {
        throw new Error(`buffer has ${data.length} elements, want ${opts.width * opts.height * opts.components}`);
      }
      if (!opts.colorSpace) throw new Error("colorSpace is required");
      checkProfile(opts.colorProfile);
      // Held full range: reduced-range input (no fullRange flag) is scaled up.
      const held = depth === 16 && !opts.fullRange
        ? Uint16Array.from(data, (v) => Math.round((Math.min(v, 32768) * 65535) / 32768))
        : data.slice();
      const imageData = new FakeImageData(held, {
        width: opts.width, height: opts.height, components: opts.components, depth,
        colorSpace: opts.colorSpace, colorProfile: opts.colorProfile,
      });
      host.imageDatas.push(imageData);
      return imageData;
    },

    async putPixels(opts) {
      host._record("imaging.putPixels", { ...opts, imageData: undefined });
      const doc = docById(opts.documentID);
      const layer = doc.layerById(opts.layerID);
      if (!layer || layer.kind !== constants.LayerKind.PIXEL) throw new Error("putPixels needs a pixel layer");
      const img = opts.imageData;
      if (img.disposed) throw new Error("imageData was disposed");
      if (img.componentSize !== doc._depth) throw new Error("fake: imageData depth differs from the document");
      doc._mutate(opts.commandName || "Put Pixels");
      const t = opts.targetBounds || { left: 0, top: 0 };
      layer.pixels = {
        rect: { x: t.left, y: t.top, width: img.width, height: img.height },
        data: img._data, channels: img.components, depth: img.componentSize,
      };
    },

    async putLayerMask(opts) {
      host._record("imaging.putLayerMask", { ...opts, imageData: undefined });
      const doc = docById(opts.documentID);
      const layer = doc.layerById(opts.layerID);
      if (!layer) throw new Error("no such layer");
      const img = opts.imageData;
      if (img.components !== 1 || img.colorSpace !== "Grayscale") throw new Error("a mask must be one Grayscale component");
      doc._mutate(opts.commandName || "Layer Mask");
      const t = opts.targetBounds || { left: 0, top: 0 };
      layer.mask = { rect: { x: t.left, y: t.top, width: img.width, height: img.height }, data: img._data, depth: img.componentSize };
    },
  };

  const core = {
    async executeAsModal(fn, opts) {
      host._record("core.executeAsModal", opts);
      if (host._modal) {
        const e = new Error("host is in a modal state");
        e.number = 9;
        throw e;
      }
      const autoClose = new Set();
      const ctx = {
        isCancelled: false,
        onCancel: null,
        reportProgress(p) { host.progress.push(p); },
        hostControl: {
          async suspendHistory({ documentID, name }) {
            host._record("hostControl.suspendHistory", { documentID, name });
            const doc = docById(documentID);
            const s = { id: host._suspensions.length + 1, doc, name, open: true, changed: false, snapshot: doc._layers.map((l) => l._clone(doc)) };
            host._suspensions.push(s);
            return s.id;
          },
          async resumeHistory(id, commit = true) {
            host._record("hostControl.resumeHistory", { id, commit });
            const s = host._suspensions.find((x) => x.id === id);
            if (!s || !s.open) throw new Error("no such open suspension");
            s.open = false;
            if (commit) {
              if (s.changed) s.doc.historyStates.push({ name: s.name });
            } else {
              s.doc._layers = s.snapshot;
              s.doc._activeLayers = s.doc._layers.length ? [s.doc._layers[0]] : [];
            }
          },
          async registerAutoCloseDocument(id) { host._record("hostControl.registerAutoCloseDocument", { id }); autoClose.add(id); },
          async unregisterAutoCloseDocument(id) { host._record("hostControl.unregisterAutoCloseDocument", { id }); autoClose.delete(id); },
        },
      };
      host._modal = ctx;
      try {
        const out = await fn(ctx, opts && opts.descriptor);
        for (const s of host._suspensions) if (s.open) { s.open = false; if (s.changed) s.doc.historyStates.push({ name: s.name }); }
        return out;
      } catch (e) {
        // Photoshop cancels suspended history and closes auto-close documents when the scope throws.
        for (const s of host._suspensions) if (s.open) { s.open = false; s.doc._layers = s.snapshot; }
        for (const id of autoClose) {
          const doc = host._docs.find((d) => d.id === id);
          if (doc) doc.closeWithoutSaving();
        }
        throw e;
      } finally {
        host._modal = null;
      }
    },
  };

  const action = {
    addNotificationListener(events, fn) { host._listeners.push({ events, fn }); },
    removeNotificationListener(events, fn) { host._listeners = host._listeners.filter((l) => l.fn !== fn); },
    async batchPlay() { throw new Error("fake: batchPlay is not modelled"); },
  };

  const store = new Map();
  const temp = new Map();
  const tempFolder = {
    async createFile(name) {
      const file = {
        name,
        _data: new Uint8Array(0),
        async read({ format } = {}) {
          if (format !== "binary") throw new Error("fake: only binary reads are modelled");
          return file._data.slice().buffer;
        },
        async delete() { temp.delete(name); },
      };
      temp.set(name, file);
      return file;
    },
  };
  const uxp = {
    storage: {
      formats: { binary: "binary", utf8: "utf8" },
      localFileSystem: {
        async getTemporaryFolder() { return tempFolder; },
        /** The system's open dialog: answers what the test chose with host.choosePick (null: Cancel). */
        async getFileForOpening(opts = {}) {
          host._record("localFileSystem.getFileForOpening", opts);
          if (!host._pick) throw new Error("fake: no file chosen for the open dialog (host.choosePick)");
          const pick = host._pick;
          if (pick.file === null) return null;
          const { name, nativePath, text } = pick.file;
          const ext = name.split(".").pop().toLowerCase();
          if (opts.types && !opts.types.includes(ext)) throw new Error(`fake: the dialog only offers ${opts.types.join(", ")}`);
          return {
            name, nativePath, isFile: true,
            async read({ format } = {}) {
              if (format === "utf8") return text;
              if (format === "binary") return new TextEncoder().encode(text).buffer;
              throw new Error("fake: read format must be utf8 or binary");
            },
          };
        },
      },
      secureStorage: {
        async setItem(key, value) {
          host._record("secureStorage.setItem", { key });
          const s = String(value);
          store.set(key, Uint8Array.from(s, (ch) => ch.charCodeAt(0)));
        },
        async getItem(key) { return store.has(key) ? store.get(key).slice() : null; },
        async removeItem(key) { store.delete(key); },
        get length() { return store.size; },
      },
    },
  };

  host.modules = { photoshop: { app, core, imaging, action, constants }, uxp };
  return host;
}

module.exports = { createFakeHost, constants, FakeImageData, fakeIccFor };
