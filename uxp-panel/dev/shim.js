/* Dev-only: lets the UXP panel run in Chromium.
 * 1. Minimal stand-ins for the Spectrum UXP widgets (sp-textfield, sp-slider,
 *    sp-picker, sp-progressbar, ...) with the same `value` properties and events.
 * 2. A CommonJS `require` (synchronous XHR, as UXP's require is synchronous),
 *    where `photoshop` and `uxp` are the project's one host fake with a demo document.
 */
(function () {
  "use strict";

  // ------------------------------------------------------------ widgets

  const FIELD_CSS = `
    :host { display: inline-block; }
    input, textarea, select {
      box-sizing: border-box; width: 100%; font: inherit; font-size: 12px; color: #e6e6e6;
      background: #1f1f1f; border: 1px solid #4b4b4b; border-radius: 4px; padding: 4px 7px; outline: none;
    }
    input, select { height: 26px; }
    textarea { height: 100%; min-height: 48px; resize: none; line-height: 16px; }
    input:focus, textarea:focus, select:focus { border-color: #378ef0; }
    input::placeholder, textarea::placeholder { color: #7a7a7a; font-style: italic; }
    :host([disabled]) input, :host([disabled]) select { opacity: 0.45; }
  `;

  function field(tag, make) {
    customElements.define(tag, class extends HTMLElement {
      constructor() {
        super();
        const root = this.attachShadow({ mode: "open" });
        root.innerHTML = `<style>${FIELD_CSS}</style>`;
        this._el = make(this);
        root.appendChild(this._el);
        this._el.addEventListener("change", () => this.dispatchEvent(new Event("change", { bubbles: true })));
      }
      get value() { return this._el.value; }
      set value(v) { this._el.value = v; }
    });
  }

  field("sp-textfield", (host) => {
    const input = document.createElement("input");
    input.type = host.getAttribute("type") === "password" ? "password" : host.getAttribute("type") === "number" ? "number" : "text";
    input.placeholder = host.getAttribute("placeholder") || "";
    return input;
  });
  field("sp-textarea", (host) => {
    const ta = document.createElement("textarea");
    ta.placeholder = host.getAttribute("placeholder") || "";
    return ta;
  });

  customElements.define("sp-slider", class extends HTMLElement {
    constructor() {
      super();
      const root = this.attachShadow({ mode: "open" });
      root.innerHTML = `<style>
        :host { display: block; height: 20px; }
        input { width: 100%; margin: 0; accent-color: #d0d0d0; height: 20px; }
      </style>`;
      this._el = document.createElement("input");
      this._el.type = "range";
      for (const a of ["min", "max", "step", "value"]) if (this.hasAttribute(a)) this._el.setAttribute(a, this.getAttribute(a));
      this._el.value = this.getAttribute("value") || "0";
      root.appendChild(this._el);
      this._el.addEventListener("change", () => this.dispatchEvent(new Event("change", { bubbles: true })));
    }
    get value() { return Number(this._el.value); }
    set value(v) { this._el.value = v; }
  });

  customElements.define("sp-picker", class extends HTMLElement {
    constructor() {
      super();
      const root = this.attachShadow({ mode: "open" });
      root.innerHTML = `<style>${FIELD_CSS}
        select { appearance: none; background-image: linear-gradient(45deg, transparent 50%, #bdbdbd 50%), linear-gradient(135deg, #bdbdbd 50%, transparent 50%);
          background-position: calc(100% - 12px) 11px, calc(100% - 8px) 11px; background-size: 4px 4px; background-repeat: no-repeat; padding-right: 20px; }
      </style>`;
      this._el = document.createElement("select");
      root.appendChild(this._el);
      this._el.addEventListener("change", () => {
        for (const item of this.querySelectorAll("sp-menu-item")) item.toggleAttribute("selected", item.getAttribute("value") === this._el.value);
        this.dispatchEvent(new Event("change", { bubbles: true }));
      });
      new MutationObserver(() => this._build()).observe(this, { childList: true, subtree: true });
    }
    connectedCallback() { this._build(); }
    _build() {
      const items = [...this.querySelectorAll("sp-menu-item")];
      this._el.innerHTML = "";
      for (const item of items) {
        const o = document.createElement("option");
        o.value = item.getAttribute("value");
        o.textContent = item.textContent;
        o.selected = item.hasAttribute("selected");
        this._el.appendChild(o);
      }
    }
    get value() { return this._el.value; }
    set value(v) { this._el.value = v; }
  });

  customElements.define("sp-progressbar", class extends HTMLElement {
    static get observedAttributes() { return ["value"]; }
    constructor() {
      super();
      const root = this.attachShadow({ mode: "open" });
      root.innerHTML = `<style>
        :host { display: block; }
        .track { height: 4px; border-radius: 2px; background: #4a4a4a; overflow: hidden; }
        .fill { height: 100%; width: 0; background: #378ef0; border-radius: 2px; transition: width 0.2s; }
      </style><div class="track"><div class="fill"></div></div>`;
      this._fill = root.querySelector(".fill");
    }
    attributeChangedCallback() { this._draw(); }
    get value() { return Number(this.getAttribute("value") || 0); }
    set value(v) { this.setAttribute("value", String(v)); }
    _draw() {
      const max = Number(this.getAttribute("max") || 100);
      this._fill.style.width = `${Math.max(0, Math.min(100, (this.value / max) * 100))}%`;
    }
  });

  // ------------------------------------------------------------ require

  const cache = new Map();
  const builtins = {};

  function resolve(from, id) {
    const base = new URL(from, location.href);
    return new URL(id.endsWith(".js") ? id : `${id}.js`, base).href;
  }

  function load(url) {
    if (cache.has(url)) return cache.get(url).exports;
    const xhr = new XMLHttpRequest();
    xhr.open("GET", url, false);
    xhr.send();
    if (xhr.status !== 200) throw new Error(`cannot load ${url}: ${xhr.status}`);
    const module = { exports: {} };
    cache.set(url, module);
    const fn = new Function("module", "exports", "require", `${xhr.responseText}\n//# sourceURL=${url}`);
    fn(module, module.exports, (id) => requireFrom(url, id));
    return module.exports;
  }

  function requireFrom(from, id) {
    if (id in builtins) return builtins[id];
    return load(resolve(from, id));
  }

  window.require = (id) => requireFrom(location.href, id);

  // ------------------------------------------------------------ the host

  const { createFakeHost } = window.require("./tests/fakes/photoshop.js");
  const host = createFakeHost();
  const demo = (window.RB_DEV && window.RB_DEV.demo) || {};
  const W = demo.width || 1600;
  const H = demo.height || 1067;
  const data = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const i = (y * W + x) * 3;
      data[i] = 40 + (x * 160) / W;
      data[i + 1] = 70 + (y * 120) / H;
      data[i + 2] = 150 - (x * 60) / W;
    }
  }
  let selection = null;
  if (demo.selection !== false) {
    const sel = new Uint8Array(W * H);
    const cx = W * 0.55, cy = H * 0.4, rx = W * 0.13, ry = H * 0.14;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const d = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2;
        if (d < 1) sel[y * W + x] = d > 0.9 ? Math.round(255 * (1 - d) * 10) : 255;
      }
    }
    selection = { data: sel };
  }
  host.addDocument({
    title: demo.title || "portrait.psd", width: W, height: H, depth: 8,
    composite: { rect: { x: 0, y: 0, width: W, height: H }, data, channels: 3 }, selection,
  });
  builtins.photoshop = host.modules.photoshop;
  builtins.uxp = host.modules.uxp;
  window.RB_FAKE_HOST = host;

  // Paired and pointed at the proxied bridge, as a user would have it after pairing once.
  if (window.RB_DEV && window.RB_DEV.proxied) localStorage.setItem("retouch-bridge.url", location.origin);
  if (window.RB_DEV && window.RB_DEV.token) host.modules.uxp.storage.secureStorage.setItem("retouch-bridge.token", window.RB_DEV.token);

  // demo.click: press a button once the panel is connected (for end-to-end checks).
  if (demo.click) {
    const timer = setInterval(() => {
      const btn = document.getElementById(demo.click);
      const status = document.getElementById("status");
      if (btn && status && status.getAttribute("data-tone") === "ok" && !btn.hasAttribute("disabled")) {
        clearInterval(timer);
        btn.click();
      }
    }, 50);
  }
})();
