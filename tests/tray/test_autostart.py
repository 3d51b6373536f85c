"""Start-at-login entries: all three OS formats written into a temporary HOME and read back
with independent parsers; the current OS's entry installed and removed."""

from __future__ import annotations

import configparser
import plistlib
import shlex
import shutil
import subprocess
import sys

import pytest

from bridge.tray import autostart

# A path with the characters each format must quote.
ODD_PYTHON = "/opt/My Apps/py 100%/bin/python\"3\""
COMMAND = [ODD_PYTHON, "-m", "bridge", "tray", "--hidden"]


def desktop_exec_args(exec_line: str) -> list[str]:
    # Desktop Entry Exec quoting is shell-like double quoting plus %% for a literal %.
    return [a.replace("%%", "%") for a in shlex.split(exec_line)]


def test_linux_desktop_file(tmp_path):
    entry = autostart.entry_for("linux", home=tmp_path, command=COMMAND)
    assert entry.path == tmp_path / ".config" / "autostart" / "retouch-bridge.desktop"
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(entry.content.decode("utf-8"))
    section = parser["Desktop Entry"]
    assert section["Type"] == "Application" and section["Name"] == "Retouch Bridge"
    assert section["Terminal"] == "false"
    assert desktop_exec_args(section["Exec"]) == COMMAND


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None,
                    reason="desktop-file-validate (desktop-file-utils) is not installed")
def test_linux_desktop_file_is_valid(tmp_path):
    entry = autostart.entry_for("linux", home=tmp_path)
    entry.path.parent.mkdir(parents=True)
    entry.path.write_bytes(entry.content)
    out = subprocess.run(["desktop-file-validate", str(entry.path)], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_macos_launch_agent(tmp_path):
    entry = autostart.entry_for("macos", home=tmp_path, command=COMMAND, log_dir=tmp_path / "logs")
    assert entry.path == tmp_path / "Library" / "LaunchAgents" / "org.retouchbridge.tray.plist"
    plist = plistlib.loads(entry.content)
    assert plist["Label"] == "org.retouchbridge.tray"
    assert plist["ProgramArguments"] == COMMAND  # an argv list: no quoting to get wrong
    assert plist["RunAtLoad"] is True and plist["KeepAlive"] is False
    assert plist["StandardErrorPath"] == str(tmp_path / "logs" / "tray.err.log")


def test_windows_startup_entry(tmp_path):
    entry = autostart.entry_for("windows", home=tmp_path,
                                command=["C:\\Program Files\\Py\\pythonw.exe", "-m", "bridge",
                                         "tray", "--hidden"])
    assert entry.path == (tmp_path / "AppData" / "Roaming" / "Microsoft" / "Windows" /
                          "Start Menu" / "Programs" / "Startup" / "Retouch Bridge.cmd")
    text = entry.content.decode("utf-8")
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")
    assert 'start "" "C:\\Program Files\\Py\\pythonw.exe" -m bridge tray --hidden\r\n' in text


def test_windows_prefers_pythonw(tmp_path, monkeypatch):
    fake = tmp_path / "python.exe"
    fake.write_text("")
    (tmp_path / "pythonw.exe").write_text("")
    monkeypatch.setattr(sys, "executable", str(fake))
    assert autostart.launch_command("windows")[0] == str(tmp_path / "pythonw.exe")
    assert autostart.launch_command("linux")[0] == str(fake)


def test_default_command_runs_this_python_hidden():
    cmd = autostart.launch_command("linux")
    assert cmd == [sys.executable, "-m", "bridge", "tray", "--hidden"]


def test_enable_and_disable_on_this_os(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("APPDATA", str(tmp_path / "appdata"))
    assert not autostart.is_enabled()
    path = autostart.enable(log_dir=tmp_path / "logs")
    assert autostart.is_enabled() and path.exists()
    assert path.is_relative_to(tmp_path)
    expected = autostart.entry_for(autostart.current_os(), log_dir=tmp_path / "logs")
    assert path == expected.path and path.read_bytes() == expected.content
    if autostart.current_os() == "linux":
        assert path == tmp_path / "xdg" / "autostart" / "retouch-bridge.desktop"
    assert autostart.enable(log_dir=tmp_path / "logs") == path  # twice is fine
    assert autostart.disable() is True
    assert not path.exists() and not autostart.is_enabled()
    assert autostart.disable() is False


@pytest.mark.skipif(sys.platform != "linux", reason="XDG layout")
def test_linux_without_xdg_config_home_uses_dot_config(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    path = autostart.enable()
    assert path == tmp_path / ".config" / "autostart" / "retouch-bridge.desktop"
    autostart.disable()
