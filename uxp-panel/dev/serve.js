"use strict";
/**
 * Dev server for the panel in a normal browser: serves uxp-panel/ with the dev
 * shims injected (dev.html), and proxies /v1 (HTTP and the event WebSocket) to
 * a real bridge, so the page talks to the bridge same-origin.
 *
 * A proxy on another port is exactly what the identity proof refuses (the bridge signs
 * its own port). This one holds the token, so it vouches for the bridge: it checks the
 * bridge's proof for the bridge's port and, only if that holds, answers the page with a
 * proof for its own port. Anything that fails the check is passed on untouched, and the
 * panel refuses it as it would directly.
 *
 *   node dev/serve.js --bridge http://127.0.0.1:7847 --token "$(retouch-bridge token)"
 *
 * Used by the screenshot test; not part of the plugin package.
 */

const http = require("node:http");
const net = require("node:net");
const fs = require("node:fs");
const path = require("node:path");

const { proofFor, proofMatches, portOf } = require("../src/identity.js");

const ROOT = path.resolve(__dirname, "..");
const TYPES = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
  ".json": "application/json", ".png": "image/png", ".svg": "image/svg+xml",
};
// Headers a browser adds that would make the bridge treat the proxied call as cross-site.
const DROP = new Set(["origin", "referer", "cookie", "sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest", "host"]);

function devPage() {
  const html = fs.readFileSync(path.join(ROOT, "index.html"), "utf8");
  return html
    .replace("</head>", '  <link rel="stylesheet" href="dev/sp-shim.css">\n</head>')
    .replace('<script src="index.js"></script>',
      '<script src="dev/config.js"></script>\n  <script src="dev/shim.js"></script>\n  <script src="dev/index.js"></script>');
}

function proxyHeaders(headers, target) {
  const out = {};
  for (const [k, v] of Object.entries(headers)) if (!DROP.has(k.toLowerCase())) out[k] = v;
  out.host = target.host;
  return out;
}

function createDevServer({ bridge = null, token = "", demo = {} } = {}) {
  const target = bridge ? new URL(bridge) : null;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://dev");
    if (url.pathname.startsWith("/v1/")) {
      if (!target) { req.socket.destroy(); return; }
      const nonce = url.pathname === "/v1/health" ? url.searchParams.get("challenge") : null;
      const up = http.request({
        host: target.hostname, port: target.port, method: req.method, path: req.url,
        headers: proxyHeaders(req.headers, target),
      }, (answer) => {
        if (!nonce || !token || answer.statusCode !== 200) {
          res.writeHead(answer.statusCode, answer.headers);
          answer.pipe(res);
          return;
        }
        const chunks = [];
        answer.on("data", (c) => chunks.push(c));
        answer.on("end", () => {
          let body = Buffer.concat(chunks);
          try {
            const health = JSON.parse(body.toString("utf8"));
            if (proofMatches(token, portOf(target.href), nonce, health.proof)) {
              health.proof = proofFor(token, req.socket.localPort, nonce);
              body = Buffer.from(JSON.stringify(health));
            }
          } catch { /* not JSON: passed on as it came */ }
          const headers = { ...answer.headers, "content-length": String(body.length) };
          delete headers["transfer-encoding"];
          res.writeHead(answer.statusCode, headers);
          res.end(body);
        });
      });
      // Like a stopped bridge: the connection fails, so the page sees a network error.
      up.on("error", () => req.socket.destroy());
      req.pipe(up);
      return;
    }
    if (url.pathname === "/dev/config.js") {
      res.writeHead(200, { "Content-Type": TYPES[".js"] });
      res.end(`window.RB_DEV = ${JSON.stringify({ token, proxied: !!target, demo })};\n`);
      return;
    }
    if (url.pathname === "/" || url.pathname === "/dev.html") {
      res.writeHead(200, { "Content-Type": TYPES[".html"] });
      res.end(devPage());
      return;
    }
    const file = path.resolve(ROOT, `.${decodeURIComponent(url.pathname)}`);
    if (!file.startsWith(ROOT + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404); res.end("not found"); return;
    }
    res.writeHead(200, { "Content-Type": TYPES[path.extname(file)] || "application/octet-stream" });
    fs.createReadStream(file).pipe(res);
  });

  // The event stream: replay the upgrade request to the bridge without the browser's Origin.
  server.on("upgrade", (req, socket, head) => {
    if (!target || !req.url.startsWith("/v1/")) { socket.destroy(); return; }
    const up = net.connect(Number(target.port), target.hostname, () => {
      const headers = proxyHeaders(req.headers, target);
      let text = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (const [k, v] of Object.entries(headers)) text += `${k}: ${v}\r\n`;
      up.write(`${text}\r\n`);
      if (head && head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on("error", () => socket.destroy());
    socket.on("error", () => up.destroy());
  });

  return {
    server,
    listen(port = 0) {
      return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(`http://127.0.0.1:${server.address().port}`)));
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : dflt; };
  const dev = createDevServer({ bridge: opt("bridge", "http://127.0.0.1:7847"), token: opt("token", process.env.RB_TOKEN || "") });
  dev.listen(Number(opt("port", 8787))).then((url) => console.log(`panel dev page: ${url}/dev.html`));
}

module.exports = { createDevServer, devPage };
