"""Claims of SECURITY.md that no other test covered, each against the real code: the
token file's mode under any umask, the browser checks for `null` and same-site
requests, no CORS grant on any answer, the bounds on a recipe sent over HTTP, a batch
never writing over its inputs, and the warning for a non-loopback --host."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.images import gradient, png_bytes
from tests.support.server import ROOT, free_port


def bridge_token(home: Path, umask: int) -> subprocess.CompletedProcess[str]:
    """`retouch-bridge token` in a fresh process with the given umask."""
    env = {**os.environ, "RB_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bridge", "token"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60,
                          preexec_fn=lambda: os.umask(umask))


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- other local users: the token file --------------------------------------------------------
@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_the_token_is_owner_only_even_when_the_umask_allows_everything(tmp_path: Path):
    # With umask 0 a plain write would leave the file 0666: readable and writable by all.
    done = bridge_token(tmp_path, 0)
    assert done.returncode == 0, done.stderr
    token_file = tmp_path / "config" / "token"
    assert mode_of(token_file) == 0o600
    assert token_file.read_text().strip() == done.stdout.strip()
    assert len(done.stdout.strip()) >= 40  # 32 random bytes, URL-safe base64
    assert not (tmp_path / "config" / "token.tmp").exists()


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_token_file_left_readable_by_others_is_tightened_and_kept(tmp_path: Path):
    token_file = tmp_path / "config" / "token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text("an-existing-token\n")
    token_file.chmod(0o644)
    done = bridge_token(tmp_path, 0o022)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "an-existing-token"
    assert mode_of(token_file) == 0o600


# -- web pages in the browser -----------------------------------------------------------------
def test_a_null_origin_from_a_cross_site_page_is_403(bridge_server):
    # A sandboxed iframe (or a file:// page) on some web page sends Origin: null.
    r = bridge_server.get("/v1/capabilities",
                          headers={"Origin": "null", "Sec-Fetch-Site": "cross-site"})
    assert r.status == 403 and r.error_code == "bad_origin"
    # The same Origin without the cross-site mark is what UXP sends: allowed.
    assert bridge_server.get("/v1/capabilities", headers={"Origin": "null"}).status == 200


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_a_browser_request_without_origin_from_another_site_is_403(bridge_server, site):
    # e.g. <img src="http://127.0.0.1:7847/..."> on http://localhost:3000 (same-site).
    r = bridge_server.get("/v1/capabilities", headers={"Sec-Fetch-Site": site})
    assert r.status == 403 and r.error_code == "bad_origin"


@pytest.mark.parametrize("site", ["none", "same-origin"])
def test_a_browser_request_without_origin_from_the_bridge_itself_passes(bridge_server, site):
    assert bridge_server.get("/v1/capabilities", headers={"Sec-Fetch-Site": site}).status == 200


def cors_grants(headers: dict[str, str]) -> dict[str, str]:
    """The headers that would let a page on another origin read an answer."""
    return {k: v for k, v in headers.items()
            if k.lower().startswith(("access-control-allow-", "access-control-max-age"))}


def test_no_answer_lets_another_origin_read_it(bridge_server):
    own = f"http://127.0.0.1:{bridge_server.port}"
    job = bridge_server.submit("passthrough", png_bytes(gradient(8, 8))).json()["id"]
    assert bridge_server.wait(job)["state"] == "done"
    answers = [
        bridge_server.get("/v1/health", token=False),
        bridge_server.get("/v1/capabilities", headers={"Origin": own}),
        bridge_server.get(f"/v1/jobs/{job}/result", headers={"Origin": own}),
        bridge_server.get("/v1/capabilities", headers={"Origin": "https://evil.example"}),
    ]
    assert answers[2].status == 200 and "X-Width" in answers[2].headers  # a pixel answer
    # A CORS preflight, from a page and from the bridge's own origin.
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization"}
    evil = bridge_server.request("OPTIONS", "/v1/jobs", token=False,
                                 headers={"Origin": "https://evil.example", **preflight})
    assert evil.status == 403
    answers += [evil, bridge_server.request("OPTIONS", "/v1/jobs", token=False,
                                            headers={"Origin": own, **preflight})]
    for answer in answers:
        assert cors_grants(answer.headers) == {}, answer.headers


# -- recipe files ------------------------------------------------------------------------------
def post_recipe(bridge, recipe: str):
    return bridge.post_form("/v1/recipes/run", [
        ("recipe", recipe, None), ("image", png_bytes(gradient(8, 8)), "image/png")])


def test_a_recipe_over_http_is_bounded_in_steps_and_size(bridge_server):
    steps = '[[steps]]\nop = "passthrough"\n'
    assert post_recipe(bridge_server, steps * 2).status == 202  # the same recipe, short: runs
    r = post_recipe(bridge_server, steps * 51)
    assert r.status == 400 and "at most 50 steps" in r.json()["error"]["message"]
    # Over 1 MB of text (a comment, so only its size is wrong).
    r = post_recipe(bridge_server, steps + "#" + "x" * (1 << 20) + "\n")
    assert r.status == 400 and "too long" in r.json()["error"]["message"]
    assert bridge_server.alive()


# -- path traversal: batch outputs ----------------------------------------------------------------
@pytest.mark.parametrize("how", ["same folder", "symlink to it"])
def test_a_batch_never_writes_over_its_inputs(tmp_path: Path, how: str):
    from bridge.batch.run import run_batch
    from bridge.errors import BridgeError
    from bridge.recipes import parse_recipe

    src = tmp_path / "in"
    src.mkdir()
    original = png_bytes(gradient(4, 4))
    (src / "a.png").write_bytes(original)
    out = src
    if how == "symlink to it":
        out = tmp_path / "out"
        out.symlink_to(src, target_is_directory=True)
    # Same format, no suffix: every output name is its input's name.
    recipe = parse_recipe('[output]\nformat = "png"\n[[steps]]\nop = "passthrough"\n')
    with pytest.raises(BridgeError, match=r"never overwritten|would overwrite an input"):
        run_batch(src, recipe, out, workers=1, report=False)
    assert (src / "a.png").read_bytes() == original
    # Refused before anything was made: no journal folder left in the input folder.
    assert sorted(p.name for p in src.iterdir()) == ["a.png"]


# -- other machines: --host ------------------------------------------------------------------
def nonlocal_bind_allowed() -> bool:
    try:
        return Path("/proc/sys/net/ipv4/ip_nonlocal_bind").read_text().strip() != "0"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="relies on Linux bind rules")
@pytest.mark.skipif(nonlocal_bind_allowed(), reason="this machine binds addresses it lacks")
def test_a_non_loopback_host_prints_a_loud_warning_before_binding(capsys):
    from bridge.config import load_settings
    from bridge.errors import BridgeError
    from bridge.server.app import serve

    # 192.0.2.1 (TEST-NET-1) is on no interface here, so the bind fails locally: no packet
    # leaves the machine, and the warning must already be out by then.
    settings = load_settings(host="192.0.2.1", port=free_port())
    with pytest.raises(BridgeError, match=r"cannot listen on 192\.0\.2\.1"):
        serve(settings)
    err = capsys.readouterr().err
    assert "WARNING: binding to 192.0.2.1" in err
    assert "other machines on the network can reach" in err


def test_the_loopback_default_prints_no_warning(bridge_server):
    assert not any("WARNING" in line for line in bridge_server.output), bridge_server.output
