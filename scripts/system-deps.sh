#!/usr/bin/env bash
# Debian packages the tests use: a real browser, real Lua, an independent PSD reader, a display,
# and exiftool as an independent reader of the metadata we write (JPEG Extended XMP).
# Installs what is missing when run as root; otherwise says what to install.
set -euo pipefail
need=()
check() { command -v "$1" >/dev/null 2>&1 || need+=("$2"); }
check chromium chromium
check lua5.1 lua5.1
check busted lua-busted
check luacheck lua-check
check identify imagemagick
check exiftool libimage-exiftool-perl
check Xvfb xvfb
check trayer trayer
lua5.1 -e 'require("socket.http")' >/dev/null 2>&1 || need+=(lua-socket)
# The tray app: D-Bus session, window tools for its test, and what PyGObject (the
# `tray` extra on Linux) builds against and the dashboard window runs on (WebKit2GTK).
check dbus-daemon dbus
check xdotool xdotool
check xwininfo x11-utils
check pkg-config pkg-config
pkg() { dpkg -s "$1" >/dev/null 2>&1 || need+=("$1"); }
pkg gir1.2-webkit2-4.1
check desktop-file-validate desktop-file-utils
pkg libgirepository1.0-dev
pkg libcairo2-dev
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "missing Debian packages: ${need[*]}"
  echo "install them with: sudo apt-get install ${need[*]}"
  exit 1
fi
