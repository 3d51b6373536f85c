"use strict";
/**
 * Start the real bridge server for a test: `python -m bridge serve` on a free
 * 127.0.0.1 port with its own RB_HOME; the token is read from RB_HOME/config/token.
 * Python: $RB_PYTHON, else <repo>/.venv/bin/python. The bridge package comes from
 * this checkout, or from $RB_BRIDGE_ROOT (another checkout) when set.
 */

const { spawn } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");

const REPO = path.resolve(__dirname, "..", "..", "..");
const BRIDGE_ROOT = process.env.RB_BRIDGE_ROOT || REPO;

function pythonPath() {
  return process.env.RB_PYTHON || path.join(REPO, ".venv", "bin", "python");
}

/** Why live tests cannot run here, or null when they can. */
function unavailable() {
  const py = pythonPath();
  if (!fs.existsSync(py)) return `no Python for the bridge at ${py} (set RB_PYTHON)`;
  return null;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** env: extra environment for the bridge (e.g. RB_MODEL_REGISTRY for a local mirror). */
async function startBridge({ timeoutMs = 30000, args = [], env = {} } = {}) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "rb-uxp-"));
  const port = await freePort();
  const child = spawn(pythonPath(), ["-m", "bridge", "serve", "--port", String(port), ...args], {
    cwd: BRIDGE_ROOT,
    env: { ...process.env, ...env, RB_HOME: home, PYTHONPATH: BRIDGE_ROOT, PYTHONUNBUFFERED: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`bridge did not start in ${timeoutMs} ms:\n${output}`)), timeoutMs);
    const onData = (d) => {
      output += d.toString();
      if (output.includes(`listening on http://127.0.0.1:${port}`)) { clearTimeout(timer); resolve(); }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`bridge exited (${code}) before listening:\n${output}`)); });
  });
  try {
    await ready;
  } catch (e) {
    child.kill("SIGKILL");
    fs.rmSync(home, { recursive: true, force: true });
    throw e;
  }
  const token = fs.readFileSync(path.join(home, "config", "token"), "utf8").trim();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    token,
    home,
    output: () => output,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(t);
      }
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

module.exports = { startBridge, unavailable, freePort, pythonPath, REPO, BRIDGE_ROOT };
