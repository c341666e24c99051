#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver for the console's end-to-end
# test (crates/lethe-server/tests/console_e2e.rs). Idempotent.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq chromium chromium-driver >/dev/null \
  || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; }
command -v chromium && command -v chromedriver
