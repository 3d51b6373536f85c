"use strict";
/**
 * Just enough DOM to run src/main.js in node on the real index.html: elements
 * parsed from the page (ids, attributes, nesting, text), getElementById,
 * querySelector(All) for the selectors main.js uses (tag, #id, [attr], [attr="v"]
 * and tag[attr]), attributes, classList, textContent, value, events and click().
 * The widgets' own behaviour is not modelled: tests set `value` as UXP's sp-*
 * widgets would hold it. Chromium covers the real rendering (ui.test.js).
 */

const fs = require("node:fs");
const path = require("node:path");

const VOID = new Set(["meta", "link", "input", "br", "img", "hr"]);

class El {
  constructor(doc, tag, attrs = {}) {
    this.ownerDocument = doc;
    this.tagName = tag.toUpperCase();
    this.localName = tag;
    this._attrs = new Map(Object.entries(attrs));
    this.children = [];
    this.parentNode = null;
    this._text = "";
    this._listeners = new Map();
    this.value = attrs.value !== undefined ? attrs.value : "";
    const el = this;
    this.classList = {
      add(n) { const s = el._classes(); s.add(n); el._setClasses(s); },
      remove(n) { const s = el._classes(); s.delete(n); el._setClasses(s); },
      contains(n) { return el._classes().has(n); },
    };
  }

  _classes() { return new Set((this.getAttribute("class") || "").split(/\s+/).filter(Boolean)); }

  _setClasses(s) { this.setAttribute("class", [...s].join(" ")); }

  get id() { return this.getAttribute("id") || ""; }

  get className() { return this.getAttribute("class") || ""; }

  set className(v) { this.setAttribute("class", v); }

  getAttribute(n) { return this._attrs.has(n) ? this._attrs.get(n) : null; }

  setAttribute(n, v) { this._attrs.set(n, String(v)); }

  hasAttribute(n) { return this._attrs.has(n); }

  removeAttribute(n) { this._attrs.delete(n); }

  appendChild(child) {
    if (typeof child === "string") child = new TextNode(child);
    child.parentNode = this;
    this.children.push(child);
    return child;
  }

  get textContent() { return this._text + this.children.map((c) => c.textContent).join(""); }

  set textContent(v) { this.children = []; this._text = String(v); }

  set innerHTML(v) {
    if (v !== "") throw new Error("the DOM helper only clears innerHTML (main.js never parses HTML)");
    this.children = [];
    this._text = "";
  }

  get innerHTML() { return this.textContent; }

  addEventListener(type, fn) {
    if (!this._listeners.has(type)) this._listeners.set(type, []);
    this._listeners.get(type).push(fn);
  }

  dispatchEvent(ev) {
    for (const fn of this._listeners.get(ev.type) || []) fn(ev);
    return true;
  }

  click() { this.dispatchEvent({ type: "click", target: this }); }

  /** Hidden the way main.js hides things: the "hidden" class, on it or an ancestor. */
  get isHidden() {
    for (let e = this; e && e.classList; e = e.parentNode) if (e.classList.contains("hidden")) return true;
    return false;
  }

  get elements() { return this.children.filter((c) => c instanceof El); }

  _all() {
    const out = [];
    const walk = (e) => { for (const c of e.elements) { out.push(c); walk(c); } };
    walk(this);
    return out;
  }

  querySelectorAll(selector) { return this._all().filter((e) => matches(e, selector)); }

  querySelector(selector) { return this._all().find((e) => matches(e, selector)) || null; }
}

class TextNode {
  constructor(text) { this.text = text; this.parentNode = null; }

  get textContent() { return this.text; }
}

function matches(el, selector) {
  const m = /^([a-z][\w-]*)?(?:#([\w-]+))?(?:\[([\w-]+)(?:="([^"]*)")?\])?$/.exec(selector.trim());
  if (!m) throw new Error(`the DOM helper does not understand the selector ${selector}`);
  const [, tag, id, attr, value] = m;
  if (tag && el.localName !== tag) return false;
  if (id && el.id !== id) return false;
  if (attr && !el.hasAttribute(attr)) return false;
  if (attr && value !== undefined && el.getAttribute(attr) !== value) return false;
  return true;
}

function parseAttrs(text) {
  const attrs = {};
  for (const m of text.matchAll(/([\w:-]+)(?:="([^"]*)")?/g)) attrs[m[1]] = m[2] === undefined ? "" : m[2];
  return attrs;
}

/** A document built from the panel's index.html. */
function loadPanelDocument(file = path.resolve(__dirname, "..", "..", "index.html")) {
  const html = fs.readFileSync(file, "utf8");
  const doc = {
    createElement: (tag) => new El(doc, tag),
    createTextNode: (text) => new TextNode(text),
    getElementById: (id) => doc.body._all().find((e) => e.id === id) || null,
    querySelector: (s) => doc.body.querySelector(s),
    querySelectorAll: (s) => doc.body.querySelectorAll(s),
  };
  doc.body = new El(doc, "body");
  const body = html.slice(html.indexOf("<body>") + 6, html.indexOf("</body>"));
  const stack = [doc.body];
  for (const m of body.matchAll(/<!--[\s\S]*?-->|<(\/?)([a-zA-Z][\w-]*)([^>]*)>|([^<]+)/g)) {
    const [, closing, tag, rest, text] = m;
    const top = stack[stack.length - 1];
    if (text !== undefined) {
      if (text.trim()) top.appendChild(new TextNode(text.replace(/\s+/g, " ")));
    } else if (tag && closing) {
      if (top.localName !== tag.toLowerCase()) throw new Error(`index.html: </${tag}> closes <${top.localName}>`);
      stack.pop();
    } else if (tag) {
      const el = top.appendChild(new El(doc, tag.toLowerCase(), parseAttrs(rest)));
      if (!VOID.has(tag.toLowerCase()) && !rest.trim().endsWith("/")) stack.push(el);
    }
  }
  return doc;
}

/** localStorage as UXP has it (strings by key). */
function memoryStorage() {
  const m = new Map();
  return {
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => { m.set(k, String(v)); },
    removeItem: (k) => { m.delete(k); },
    clear: () => m.clear(),
  };
}

module.exports = { loadPanelDocument, memoryStorage, El };
