"use strict";
/**
 * A port squatter that relays: it listens on a port of its own and pipes every
 * connection, byte for byte, to a real bridge on another port, recording everything
 * clients send it. The bridge behind it answers identity challenges correctly for its
 * own port; the relay passes those answers on unchanged.
 */

const net = require("node:net");

/** Listen on 127.0.0.1 (any free port) and forward to 127.0.0.1:targetPort. */
function startRelay(targetPort) {
  const sent = [];
  const sockets = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => { client.destroy(); upstream.destroy(); });
    }
    client.on("data", (chunk) => { sent.push(Buffer.from(chunk)); });
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      resolve({
        url: `http://127.0.0.1:${port}`,
        port,
        /** Everything clients sent, all connections together, as latin1 text. */
        received() { return Buffer.concat(sent).toString("latin1"); },
        /** The request lines ("GET /v1/health?challenge=... HTTP/1.1"), WebSocket upgrades included. */
        requests() {
          return this.received().split("\r\n").filter((l) => /^(GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS) /.test(l));
        },
        close() {
          for (const s of sockets) s.destroy();
          return new Promise((r) => server.close(() => r()));
        },
      });
    });
  });
}

module.exports = { startRelay };
