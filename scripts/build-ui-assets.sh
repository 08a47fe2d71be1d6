#!/usr/bin/env bash
# Fetch the web UI's browser libraries (htmx, uPlot) with npm at the versions of
# ui/package-lock.json and copy what the UI serves, with their licences, into
# src/pier/ui/static/vendor (git-ignored). `make install` and the wheel build run it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
vendor="$root/src/pier/ui/static/vendor"
cd "$root/ui"
if ! command -v npm >/dev/null; then
  echo "npm is needed to build the web UI's assets (apt-get install npm)" >&2; exit 1
fi
npm ci --no-audit --no-fund --loglevel=error >/dev/null
mkdir -p "$vendor"
cp node_modules/htmx.org/dist/htmx.min.js "$vendor/htmx.min.js"
cp node_modules/htmx.org/LICENSE "$vendor/htmx.LICENSE"
cp node_modules/uplot/dist/uPlot.iife.min.js "$vendor/uPlot.iife.min.js"
cp node_modules/uplot/dist/uPlot.min.css "$vendor/uPlot.min.css"
cp node_modules/uplot/LICENSE "$vendor/uPlot.LICENSE"
