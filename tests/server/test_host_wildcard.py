"""The Host check when the user binds every interface (`--host 0.0.0.0` or `--host ::`).

The machine then answers on addresses the bridge cannot list (each interface's, a VPN's),
so any IP address is a fine Host; a host *name* other than localhost is still refused,
since DNS rebinding needs a name. The real app with its security middleware, in process.
"""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bridge.config import load_settings
from bridge.server.app import create_app

IP_LITERALS = ["192.168.1.20", "192.168.1.20:7847", "10.0.0.1:1", "[fe80::1]:7847",
               "[2001:db8::5]", "0.0.0.0", "[::]:7847", "127.0.0.1"]
NAMES = ["evil.example", "evil.example:7847", "my-laptop.local", "192.168.1.20.nip.io",
         "1.2.3.4.evil.example:80", "[evil.example]", ""]


def host_statuses(bind: str, hosts: list[str]) -> dict[str, tuple[int, str | None]]:
    async def run() -> dict[str, tuple[int, str | None]]:
        app = create_app(load_settings(host=bind), token="t")
        answers = {}
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            for host in hosts:
                r = await client.get("/v1/capabilities", headers={
                    "Host": host, "Authorization": "Bearer t"})
                body = await r.json()
                answers[host] = (r.status, (body.get("error") or {}).get("code"))
        return answers

    return asyncio.run(run())


@pytest.mark.parametrize("bind", ["0.0.0.0", "::"])
def test_a_wildcard_bind_accepts_ip_literals_and_refuses_names(bind: str):
    answers = host_statuses(bind, IP_LITERALS + NAMES)
    assert {h: answers[h][0] for h in IP_LITERALS} == {h: 200 for h in IP_LITERALS}
    assert {h: answers[h] for h in NAMES} == {h: (403, "bad_host") for h in NAMES}


def test_a_specific_address_accepts_only_itself():
    answers = host_statuses("192.168.1.20", ["192.168.1.20:7847", "192.168.1.21", "evil.example"])
    assert answers == {"192.168.1.20:7847": (200, None), "192.168.1.21": (403, "bad_host"),
                       "evil.example": (403, "bad_host")}


def test_the_loopback_default_refuses_other_addresses():
    answers = host_statuses("127.0.0.1", ["192.168.1.20", "localhost:9"])
    assert answers == {"192.168.1.20": (403, "bad_host"), "localhost:9": (200, None)}
