"""`serve`, `token` and `info`: running the bridge and finding out about it."""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import sys

import bridge
from bridge.config import Settings, load_settings
from bridge.errors import BridgeError


def setup_logging(settings: Settings, verbose: bool = False) -> None:
    from bridge.private_dirs import make_dir, make_private_file

    log_file = make_private_file(make_dir(settings.log_dir) / "bridge.log")
    handlers: list[logging.Handler] = [
        logging.handlers.RotatingFileHandler(
            log_file, maxBytes=5 << 20, backupCount=3, encoding="utf-8"),
        logging.StreamHandler(),
    ]
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for h in handlers:
        h.setFormatter(fmt)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=handlers,
                        force=True)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # tifffile logs a warning for every broken upload; we already answer those with a 4xx.
    logging.getLogger("tifffile").setLevel(logging.ERROR)


def add_server_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="address to bind (default 127.0.0.1; others are reachable "
                                  "from the network)")
    p.add_argument("--port", type=int, help=f"port (default {bridge.DEFAULT_PORT})")
    p.add_argument("--models-dir", help="where model weights live")
    p.add_argument("--max-pixels", type=int, help="largest image accepted, in pixels")
    p.add_argument("--max-body-mb", type=int, help="largest request body, in MB")
    p.add_argument("--max-inflight-mb", type=int,
                   help="request bodies all requests together may hold in memory, in MB "
                        "(default: twice --max-body-mb, at least 1024, at most a quarter of "
                        "the memory); past it an upload waits, then gets 503 busy")
    p.add_argument("--queue-memory-mb", type=int,
                   help="decoded images waiting jobs may hold together, in MB (default as "
                        "--max-inflight-mb's); past it a new job gets 429 queue_full")
    p.add_argument("--result-ttl", type=int, dest="result_ttl_s",
                   help="seconds a finished job's result is kept")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:1, mps")
    p.add_argument("--offline", action="store_true", default=None,
                   help="never touch the network (model downloads refused)")
    p.add_argument("--allow-origin", action="append", dest="allow_origins",
                   help="also accept requests from this Origin (repeatable)")
    p.add_argument("-v", "--verbose", action="store_true")


def settings_from(args: argparse.Namespace) -> Settings:
    from pathlib import Path

    overrides = {k: getattr(args, k, None) for k in
                 ("host", "port", "max_pixels", "max_body_mb", "max_inflight_mb", "queue_memory_mb",
                  "result_ttl_s",
                  "device", "offline")}
    if getattr(args, "models_dir", None):
        overrides["models_dir"] = Path(args.models_dir).expanduser()
    if getattr(args, "allow_origins", None):
        overrides["allow_origins"] = tuple(args.allow_origins)
    return load_settings(**overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    from bridge.pairing import load_or_create_token
    from bridge.server import instance
    from bridge.server.app import serve

    settings = settings_from(args)
    token = load_or_create_token(settings.token_file)
    found = instance.running_bridge(settings.host, settings.port, token)
    if found and not found.ours:
        raise BridgeError(instance.describe_other(found))
    if found:
        # Not an error worth a traceback, but not serving either: scripts see a failure.
        print(f"retouch-bridge: {instance.describe(found)}", file=sys.stderr, flush=True)
        return 1
    setup_logging(settings, args.verbose)
    serve(settings)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from bridge.pairing import load_or_create_token

    print(load_or_create_token(load_settings().token_file))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    s = settings_from(args)
    info = {
        "version": bridge.__version__,
        "protocol": bridge.PROTOCOL_VERSION,
        "url": f"http://{s.host}:{s.port}",
        "config_dir": str(s.config_dir),
        "config_file": str(s.config_file),
        "token_file": str(s.token_file),
        "models_dir": str(s.models_dir),
        "cache_dir": str(s.cache_dir),
        "log_dir": str(s.log_dir),
        "offline": s.offline,
    }
    if not args.no_device:
        from bridge.device import device_info

        info["device"] = device_info(s.device)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(map(len, info))
        for key, value in info.items():
            print(f"{key:<{width}}  {value}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the bridge server",
                       description="Run the bridge on 127.0.0.1 until interrupted.")
    add_server_options(p)
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser("token", help="print the pairing token",
                       description="Print the pairing token (created on first use).")
    p.set_defaults(handler=cmd_token)

    p = sub.add_parser("info", help="device, configuration and folders",
                       description="Show the device, configuration and folders in use.")
    add_server_options(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--no-device", action="store_true", help="skip probing the GPU (faster)")
    p.set_defaults(handler=cmd_info)
