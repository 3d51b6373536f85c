"""`retouch-bridge models ...`: output, one-line errors, exit codes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.cli.main import main
from bridge.models.registry import builtin_registry
from tests.models import tiny_models as tm
from tests.models.file_server import FileServer

ROOT = Path(__file__).resolve().parents[2]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_json_and_table(capsys) -> None:
    code, out, _ = run(capsys, "models", "list", "--json")
    assert code == 0
    states = json.loads(out)
    assert {s["id"] for s in states} == {e.id for e in builtin_registry()}
    code, out, _ = run(capsys, "models", "list", "--json", "--task", "denoise")
    assert {s["id"] for s in json.loads(out)} == {"scunet-real-psnr", "scunet-real-gan",
                                                   "fbcnn-color"}
    code, out, _ = run(capsys, "models", "list")
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "TASK", "ARCH", "SCALE", "STATE", "SIZE", "LICENSE"]
    codeformer = next(line for line in lines if line.startswith("CodeFormer "))
    assert "missing" in codeformer and "(non-commercial)" in codeformer


def test_import_verify_rm_cycle(capsys, tmp_path: Path) -> None:
    source = tm.save(tm.compact(), tmp_path / "anime.pth")
    code, out, err = run(capsys, "models", "import", str(source), "--as", "realesr-animevideov3")
    assert code == 0 and out.startswith(f"imported {source} as realesr-animevideov3")
    assert "user-supplied" in err
    code, out, _ = run(capsys, "models", "list")
    assert "installed*" in out and "* user-supplied" in out
    code, out, _ = run(capsys, "models", "verify")
    assert code == 0 and out.startswith("ok      realesr-animevideov3  (user-supplied")
    installed = Path(json.loads(run(capsys, "models", "list", "--json")[1])[4]["path"])
    installed.write_bytes(installed.read_bytes()[:-3] + b"abc")
    code, out, _ = run(capsys, "models", "verify", "realesr-animevideov3")
    assert code == 1 and out.startswith("FAILED  realesr-animevideov3")
    code, out, _ = run(capsys, "models", "rm", "realesr-animevideov3")
    assert code == 0 and out == "removed realesr-animevideov3\n"
    code, _, err = run(capsys, "models", "rm", "realesr-animevideov3")
    assert code == 2
    assert err == "retouch-bridge: error: model 'realesr-animevideov3' is not installed\n"


def test_errors_are_one_line_with_a_non_zero_exit(capsys, tmp_path: Path, monkeypatch) -> None:
    code, _, err = run(capsys, "models", "pull", "nope")
    assert code == 2 and err.startswith("retouch-bridge: error: unknown model 'nope'")
    assert err.count("\n") == 1
    wrong = tm.save(tm.rrdb(), tmp_path / "wrong.pth")
    code, _, err = run(capsys, "models", "import", str(wrong), "--as", "realesr-animevideov3")
    assert code == 2 and "holds a ESRGAN x4 model" in err and err.count("\n") == 1
    code, _, err = run(capsys, "models", "import", str(tmp_path / "absent.pth"))
    assert code == 2 and "no such file" in err
    monkeypatch.setenv("RB_OFFLINE", "1")
    code, _, err = run(capsys, "models", "pull", "RealESRGAN_x4plus")
    assert code == 2 and err.count("\n") == 1
    assert "models pull RealESRGAN_x4plus" in err
    assert "models import PATH --as RealESRGAN_x4plus" in err


def test_pull_from_a_mirror_registry(capsys, tmp_path: Path, monkeypatch,
                                     file_server: FileServer) -> None:
    data = tm.save(tm.compact(), tmp_path / "c.pth").read_bytes() * 150  # several 1 MiB chunks
    url = file_server.add("anime.pth", data)
    entry = dataclasses.replace(builtin_registry().get("realesr-animevideov3"), url=url,
                                sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    mirror = tmp_path / "mirror.json"
    mirror.write_text(json.dumps({"models": [entry.to_json()]}))
    monkeypatch.setenv("RB_MODEL_REGISTRY", str(mirror))
    code, out, err = run(capsys, "models", "pull", "realesr-animevideov3")
    assert code == 0 and out.startswith("installed realesr-animevideov3: ")
    progress = err.splitlines()
    assert progress[0].startswith("realesr-animevideov3:   0.0%")
    assert progress[-1].startswith("realesr-animevideov3: 100.0%")
    assert 3 <= len(progress) <= 12
    code, out, _ = run(capsys, "models", "pull", "realesr-animevideov3")
    assert code == 0 and "already installed" in out
    code, out, _ = run(capsys, "models", "verify")
    assert code == 0 and "(official release" in out


def test_the_installed_command_line(tmp_path: Path) -> None:
    env = {**os.environ, "RB_HOME": str(tmp_path)}
    ok = subprocess.run([sys.executable, "-m", "bridge", "models", "list", "--json"],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and json.loads(ok.stdout)
    bad = subprocess.run([sys.executable, "-m", "bridge", "models", "verify", "yunet"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        bad.stderr.strip()] and "'yunet' is not installed" in bad.stderr


@pytest.mark.parametrize("argv", [["models"], ["models", "pull"]])
def test_usage_errors(capsys, argv) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
