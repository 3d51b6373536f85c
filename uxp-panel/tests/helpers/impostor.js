"use strict";
/**
 * A program squatting on a port: it answers GET /v1/health like a bridge, but without
 * the identity proof, with a wrong one, or not at all like the bridge, and records
 * every request (and WebSocket upgrade) it receives so tests can check what was sent.
 */

const http = require("node:http");
const crypto = require("node:crypto");

const MODES = {
  // A health answer without proof: what anything copying the bridge's health would send.
  "no-proof": () => ({ status: 200, body: { status: "ok", version: "0.1.0", protocol: 1 } }),
  "garbage-proof": () => ({ status: 200, body: { status: "ok", version: "0.1.0", protocol: 1, proof: "0".repeat(64) } }),
  // A bridge that holds another pairing token.
  "other-token": (nonce, port) => ({
    status: 200,
    body: {
      status: "ok", version: "0.1.0", protocol: 1,
      proof: crypto.createHmac("sha256", "someone-elses-token").update(`retouch-bridge-identity-v2:${port}:${nonce}`).digest("hex"),
    },
  }),
  "http-500": () => ({ status: 500, body: { error: { code: "internal_error", message: "boom" } } }),
  "not-json": () => ({ status: 200, text: "<html>hello</html>" }),
};

/** Listen on 127.0.0.1:port (0: any free port). */
function startImpostor({ mode = "no-proof", port = 0 } = {}) {
  const answer = MODES[mode];
  if (!answer) throw new Error(`unknown impostor mode ${mode}`);
  const received = [];
  const upgrades = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      received.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks) });
      const url = new URL(req.url, "http://impostor");
      // Whatever else comes (capabilities, jobs, pixels) is welcomed, to tempt the client.
      const a = url.pathname === "/v1/health" ? answer(url.searchParams.get("challenge") || "", server.address().port)
        : { status: 200, body: { protocol: 1, operations: [], jobs: [], id: "j-stolen", state: "queued" } };
      const text = a.text !== undefined ? a.text : JSON.stringify(a.body);
      res.writeHead(a.status, { "Content-Type": a.text !== undefined ? "text/html" : "application/json" });
      res.end(text);
    });
  });
  server.on("upgrade", (req, socket) => {
    upgrades.push({ url: req.url, headers: req.headers });
    socket.destroy();
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      const actual = server.address().port;
      resolve({
        url: `http://127.0.0.1:${actual}`,
        port: actual,
        received,
        upgrades,
        /** Everything it was sent, as one string, to look for a token in. */
        everything() {
          return [...received.map((r) => `${r.method} ${r.url}\n${JSON.stringify(r.headers)}\n${r.body.toString("latin1")}`),
            ...upgrades.map((u) => `UPGRADE ${u.url}\n${JSON.stringify(u.headers)}`)].join("\n");
        },
        close() {
          server.closeAllConnections();
          return new Promise((r) => server.close(() => r()));
        },
      });
    });
  });
}

module.exports = { startImpostor, MODES: Object.keys(MODES) };
