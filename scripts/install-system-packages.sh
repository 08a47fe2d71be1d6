#!/usr/bin/env bash
# Install the Debian packages a purpose needs, only where they are missing.
#   bench: wrk, nginx, libb64-0d (perf_analyzer's)
#   test:  chromium (the web UI's browser tests), postgresql (scripts/start-postgres.sh;
#          Docker: scripts/start-docker.sh)
set -euo pipefail
purpose=${1:-}
case "$purpose" in
  bench) packages=(wrk nginx libb64-0d chromium) ;;
  test) packages=(chromium postgresql) ;;
  *) echo "usage: $0 bench|test" >&2; exit 2 ;;
esac
missing=()
for pkg in "${packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "need root to install: ${missing[*]} (apt-get install -y ${missing[*]})" >&2; exit 1
  fi
fi
echo "installing ${missing[*]}..."
${SUDO:-} apt-get update -qq
DEBIAN_FRONTEND=noninteractive ${SUDO:-} apt-get install -y -qq "${missing[@]}" >/dev/null
