#!/usr/bin/env bash
# Installs the Debian tools the tests use when they are missing:
# promtool and prometheus (package prometheus), amtool and Alertmanager
# (package prometheus-alertmanager, whose binary is prometheus-alertmanager)
# docker-compose (compose validation) and chromium (the Playwright browser
# tests drive Debian's /usr/bin/chromium; Playwright never downloads one).
set -euo pipefail
need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v amtool >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ "${#need[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
# One name once, however many of its tools were missing.
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
echo "==> installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
