"""Settings: defaults, then `config.toml` in the config dir, then environment, then CLI flags.

`RB_HOME` puts every directory under one folder (tests and portable installs);
`RB_CONFIG_DIR`, `RB_MODELS_DIR`, `RB_CACHE_DIR` move one each.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

from bridge import DEFAULT_PORT

APP = "retouch-bridge"


DIR_SETTINGS = ("config_dir", "models_dir", "cache_dir", "log_dir")


def _dirs() -> tuple[dict[str, Path], set[str]]:
    """The folders, and which of them the environment chose (RB_*_DIR)."""
    home = os.environ.get("RB_HOME")
    if home:
        root = Path(home)
        base = {
            "config_dir": root / "config",
            "models_dir": root / "models",
            "cache_dir": root / "cache",
            "log_dir": root / "logs",
        }
    else:
        base = {
            "config_dir": Path(platformdirs.user_config_dir(APP)),
            "models_dir": Path(platformdirs.user_data_dir(APP)) / "models",
            "cache_dir": Path(platformdirs.user_cache_dir(APP)),
            "log_dir": Path(platformdirs.user_log_dir(APP)),
        }
    chosen = set()
    for key, env in (("config_dir", "RB_CONFIG_DIR"), ("models_dir", "RB_MODELS_DIR"),
                     ("cache_dir", "RB_CACHE_DIR"), ("log_dir", "RB_LOG_DIR")):
        if os.environ.get(env):
            base[key] = Path(os.environ[env])
            chosen.add(key)
    return base, chosen


@dataclass(frozen=True)
class Settings:
    config_dir: Path
    models_dir: Path
    cache_dir: Path
    log_dir: Path
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    max_body_mb: int = 2048
    # Request bodies all requests together may hold in memory while they are read, in MB
    # (0: twice max_body_mb, at least 1 GB, at most a quarter of the machine's memory).
    max_inflight_mb: int = 0
    max_pixels: int = 200_000_000
    result_ttl_s: int = 3600
    queue_limit: int = 64
    # Decoded images that waiting jobs may hold together, in MB (0: as max_inflight_mb's
    # default: twice max_body_mb, at least 1 GB, at most a quarter of the memory).
    queue_memory_mb: int = 0
    # Memory the model cache may hold, in MB (0: a share of what the device has).
    memory_budget_mb: int = 0
    device: str = "auto"
    offline: bool = False
    allow_origins: tuple[str, ...] = field(default_factory=tuple)
    # Model used per task (registry id) when a request names none: `[default_models]`
    # in config.toml, edited from the dashboard.
    default_models: dict[str, str] = field(default_factory=dict)
    # Folders the user named (RB_*_DIR, config.toml, --models-dir) rather than the
    # bridge's defaults: the bridge never changes their permissions (private_dirs.py).
    chosen_dirs: frozenset[str] = frozenset()

    @property
    def token_file(self) -> Path:
        return self.config_dir / "token"

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    def with_overrides(self, **changes: Any) -> Settings:
        given = {k: v for k, v in changes.items() if v is not None}
        dirs = {k for k in given if k in DIR_SETTINGS}
        if dirs:
            given["chosen_dirs"] = self.chosen_dirs | dirs
        return replace(self, **given)


_ENV = {
    "host": "RB_HOST", "port": "RB_PORT", "max_body_mb": "RB_MAX_BODY_MB",
    "max_inflight_mb": "RB_MAX_INFLIGHT_MB",
    "max_pixels": "RB_MAX_PIXELS", "result_ttl_s": "RB_RESULT_TTL", "queue_limit": "RB_QUEUE_LIMIT",
    "queue_memory_mb": "RB_QUEUE_MEMORY_MB",
    "memory_budget_mb": "RB_MEMORY_BUDGET_MB", "device": "RB_DEVICE", "offline": "RB_OFFLINE",
    "allow_origins": "RB_ALLOW_ORIGINS",
}


def _convert(name: str, raw: Any) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    if kind == "int":
        return int(raw)
    if kind == "bool":
        return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes", "on")
    if name == "allow_origins":
        items = raw if isinstance(raw, list) else str(raw).split(",")
        return tuple(s.strip() for s in items if s.strip())
    return str(raw)


def load_settings(**overrides: Any) -> Settings:
    dirs, chosen = _dirs()
    settings = Settings(**dirs, chosen_dirs=frozenset(chosen))
    changes: dict[str, Any] = {}
    if settings.config_file.exists():
        with settings.config_file.open("rb") as f:
            data = tomllib.load(f)
        for name in _ENV:
            if name in data:
                changes[name] = _convert(name, data[name])
        for name in ("models_dir", "cache_dir", "log_dir"):
            if name in data:
                changes[name] = Path(data[name]).expanduser()
        if isinstance(data.get("default_models"), dict):
            changes["default_models"] = {str(k): str(v) for k, v in data["default_models"].items()}
    for name, env in _ENV.items():
        if os.environ.get(env) not in (None, ""):
            changes[name] = _convert(name, os.environ[env])
    return settings.with_overrides(**changes).with_overrides(**overrides)
