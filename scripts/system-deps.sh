#!/usr/bin/env bash
# Installs the programs that the test suite starts by itself, when they are missing:
# redis-server (standalone and cluster tests) and Chromium (browser tests).
set -euo pipefail
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "Installing ${missing[*]} (needed by the test suite)…"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "Please install as root: apt-get install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
