"use strict";
/**
 * The network origins manifest.json lets the panel reach (package.test.js checks
 * that the two lists are the same). UXP blocks any other origin before the
 * request leaves, and the panel would only see "network error"; so the panel
 * checks the bridge URL against this list first and says exactly what to change.
 * Pure: no host APIs.
 */

const ALLOWED_ORIGINS = Object.freeze([
  "http://127.0.0.1:7847",
  "ws://127.0.0.1:7847",
  "http://localhost:7847",
  "ws://localhost:7847",
]);

/** "http://127.0.0.1:7847" -> {scheme, host, port}; null when it is not a URL. */
function originParts(text) {
  let u;
  try { u = new URL(String(text)); } catch { return null; }
  const scheme = u.protocol.replace(/:$/, "");
  const port = u.port ? Number(u.port) : scheme === "https" || scheme === "wss" ? 443 : 80;
  return { scheme, host: u.hostname, port };
}

/**
 * Why UXP would refuse to let the panel reach the bridge at `url` (its HTTP
 * origin and the matching ws:// origin for events), or null when both are allowed.
 * Returns {code: "origin_not_allowed", message, details: {url, port, host, allowed, ports}}.
 */
function originProblem(url, allowed = ALLOWED_ORIGINS) {
  if (allowed === null) return null; // a host with no manifest (the dev page): anything goes
  const want = originParts(url);
  const parsed = allowed.map(originParts).filter(Boolean);
  const httpAllowed = parsed.filter((o) => o.scheme === "http");
  const ports = [...new Set(httpAllowed.map((o) => o.port))];
  const hosts = [...new Set(httpAllowed.map((o) => o.host))];
  const details = { url: String(url), allowed: [...allowed], ports, hosts };
  if (!want || want.scheme !== "http") {
    return {
      code: "origin_not_allowed",
      message: `"${url}" is not an address the panel may use: it reaches the bridge over plain http on ${hosts.join(" or ")}, port ${ports.join(" or ")} (for example http://127.0.0.1:${ports[0]})`,
      details: { ...details, port: null, host: null },
    };
  }
  const ok = (scheme) => parsed.some((o) => o.scheme === scheme && o.host === want.host && o.port === want.port);
  if (ok("http") && ok("ws")) return null;
  const hostKnown = hosts.includes(want.host);
  const reason = hostKnown
    ? `port ${want.port} is not allowed by the panel's manifest, which allows only port ${ports.join(", ")}`
    : `host "${want.host}" is not allowed by the panel's manifest, which allows only ${hosts.join(" and ")}`;
  return {
    code: "origin_not_allowed",
    message: `Photoshop will not let the panel reach ${want.scheme}://${want.host}:${want.port}: ${reason}`,
    details: { ...details, port: want.port, host: want.host },
  };
}

module.exports = { ALLOWED_ORIGINS, originProblem, originParts };
