"""The settings the dashboard edits, checked and written to config.toml.

Only a few settings are editable from the dashboard (port, models folder, memory
budget, default model per task). Every one of them is read once at start, so a
saved change takes effect at the next start; `pending_restart` names the saved
values that differ from what the running server uses. Other keys a user put in
config.toml are kept (comments are not: the file is rewritten).
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from bridge import DEFAULT_PORT
from bridge.config import Settings
from bridge.errors import InvalidParams
from bridge.paths import user_path
from bridge.private_dirs import make_dir

EDITABLE = ("port", "models_dir", "memory_budget_mb", "default_models")
HELP = {
    "port": f"TCP port on 127.0.0.1 the bridge listens on; the Photoshop panel only connects "
            f"on {DEFAULT_PORT}, the Lightroom plugin's bridge URL must name the same port",
    "models_dir": "folder holding model weights",
    "memory_budget_mb": "memory the model cache may hold, in MB (0: automatic)",
    "default_models": "model used per task when a request names none",
}
BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def read_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    with path.open("rb") as f:
        try:
            return tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise InvalidParams(f"{path} is not valid TOML ({e}); fix or delete it first",
                                file=str(path)) from None


def running_values(settings: Settings, default_models: dict[str, str]) -> dict[str, Any]:
    """The editable values the running server actually uses."""
    return {"port": settings.port, "models_dir": str(settings.models_dir),
            "memory_budget_mb": settings.memory_budget_mb,
            "default_models": dict(default_models)}


def saved_values(settings: Settings, data: dict[str, Any]) -> dict[str, Any]:
    """What the next start will use: config.toml over the running value.

    Environment variables and command-line flags still win at start; those are not
    visible from here, which is why the page shows both running and saved values.
    """
    now = running_values(settings, {})
    return {
        "port": int(data.get("port", now["port"])),
        "models_dir": str(user_path(data["models_dir"], "models_dir")) if "models_dir" in data
        else now["models_dir"],
        "memory_budget_mb": int(data.get("memory_budget_mb", now["memory_budget_mb"])),
        "default_models": {str(k): str(v) for k, v in (data.get("default_models") or {}).items()},
    }


def port_warnings(port: int) -> list[str]:
    """What breaks when the bridge leaves the default port.

    The panel's UXP manifest lists the hosts it may reach, and Photoshop enforces the
    list: it names 127.0.0.1:{DEFAULT_PORT} and localhost:{DEFAULT_PORT} only, so a
    panel cannot follow the bridge to another port. The Lightroom plugin can, but
    only once its URL is changed by hand.
    """
    if port == DEFAULT_PORT:
        return []
    return [f"The Photoshop panel only connects on port {DEFAULT_PORT}: with port {port} it "
            f"cannot reach the bridge. Change the Lightroom plugin's bridge URL to "
            f"http://127.0.0.1:{port} too."]


def validate(changes: Any, tasks: tuple[str, ...] | None,
             model_ids: dict[str, str] | None) -> dict[str, Any]:
    """Checked, normalised values; InvalidParams naming the field otherwise.

    `tasks` and `model_ids` (id -> task) come from the model registry when it is
    available; without it default models are only checked for shape.
    """
    if not isinstance(changes, dict) or not changes:
        raise InvalidParams("send a JSON object with some of: " + ", ".join(EDITABLE))
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise InvalidParams(f"not editable here: {', '.join(unknown)}; editable: "
                            + ", ".join(EDITABLE), param=unknown[0])
    out: dict[str, Any] = {}
    if "port" in changes:
        port = changes["port"]
        if isinstance(port, bool) or not isinstance(port, int) or not 1024 <= port <= 65535:
            raise InvalidParams("port must be a whole number from 1024 to 65535", param="port")
        out["port"] = port
    if "models_dir" in changes:
        out["models_dir"] = _check_folder(changes["models_dir"])
    if "memory_budget_mb" in changes:
        mb = changes["memory_budget_mb"]
        if isinstance(mb, bool) or not isinstance(mb, int) or not 0 <= mb <= 16 << 20:
            raise InvalidParams("memory_budget_mb must be a whole number of MB, 0 for automatic",
                                param="memory_budget_mb")
        out["memory_budget_mb"] = mb
    if "default_models" in changes:
        out["default_models"] = _check_defaults(changes["default_models"], tasks, model_ids)
    return out


def _check_folder(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidParams("models_dir must be a folder path", param="models_dir")
    path = user_path(value.strip(), "models_dir")
    if not path.is_absolute():
        raise InvalidParams("models_dir must be an absolute path", param="models_dir")
    if path.exists() and not path.is_dir():
        raise InvalidParams(f"{path} exists and is not a folder", param="models_dir")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK):
        raise InvalidParams(f"cannot create or write {path}: {parent} is not writable",
                            param="models_dir")
    return str(path)


def _check_defaults(value: Any, tasks: tuple[str, ...] | None,
                    model_ids: dict[str, str] | None) -> dict[str, str]:
    if not isinstance(value, dict):
        raise InvalidParams("default_models must be an object: task -> model id",
                            param="default_models")
    out: dict[str, str] = {}
    for task, model in value.items():
        if tasks is not None and task not in tasks:
            raise InvalidParams(f"unknown task '{task}'; tasks: {', '.join(tasks)}",
                                param="default_models")
        if model in (None, ""):
            continue  # cleared: the registry's default applies again
        if not isinstance(model, str):
            raise InvalidParams(f"default model for '{task}' must be a model id",
                                param="default_models")
        if model_ids is not None:
            if model not in model_ids:
                raise InvalidParams(f"unknown model '{model}'", param="default_models")
            if model_ids[model] != task:
                raise InvalidParams(f"model '{model}' is for {model_ids[model]}, not {task}",
                                    param="default_models")
        out[str(task)] = model
    return out


def save(path: Path, changes: dict[str, Any]) -> dict[str, Any]:
    """Merge checked changes into config.toml (atomically) and return the whole file's data."""
    data = read_file(path)
    data.update(changes)
    if not data.get("default_models"):
        data.pop("default_models", None)
    make_dir(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dumps(data), encoding="utf-8")
    os.replace(tmp, path)
    return data


# -- a small TOML writer: config.toml holds scalars, lists and a few tables -------------
def dumps(data: dict[str, Any]) -> str:
    lines = ["# Retouch Bridge settings (the dashboard rewrites this file)."]
    _table(data, [], lines)
    return "\n".join(lines) + "\n"


def _table(data: dict[str, Any], prefix: list[str], lines: list[str]) -> None:
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    for key, value in data.items():
        if key not in tables:
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in tables.items():
        path = [*prefix, key]
        lines.append("")
        lines.append("[" + ".".join(_key(p) for p in path) + "]")
        _table(value, path, lines)


def _key(key: str) -> str:
    return key if BARE_KEY.fullmatch(key) else _string(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, _dt.date | _dt.time):
        return value.isoformat()
    raise InvalidParams(f"cannot write a {type(value).__name__} to config.toml")


def _string(s: str) -> str:
    out = s.replace("\\", "\\\\").replace('"', '\\"')
    out = "".join(c if c >= " " and c != "\x7f" else f"\\u{ord(c):04x}" for c in out)
    return f'"{out}"'
