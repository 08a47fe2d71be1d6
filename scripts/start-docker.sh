#!/usr/bin/env bash
# Make a Docker engine and a local registry (127.0.0.1:5000) answer, for `make test`.
# Idempotent: installs only missing packages, starts dockerd only when `docker info` fails,
# and the registry only when nothing answers on http://127.0.0.1:5000/v2/.
#   env: PIER_DOCKERD_LOG (default /tmp/pier-dockerd.log), PIER_REGISTRY_LOG
#        (default /tmp/pier-registry.log), PIER_DOCKER_WAIT_S (default 30)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dockerd_log=${PIER_DOCKERD_LOG:-/tmp/pier-dockerd.log}
registry_log=${PIER_REGISTRY_LOG:-/tmp/pier-registry.log}
wait_s=${PIER_DOCKER_WAIT_S:-30}
registry_url=http://127.0.0.1:5000/v2/
# debootstrap: the Debian base of the test image that has Python and pier in it.
# iproute2: the test swarm's network namespaces (scripts/swarm.sh).
packages=(docker.io busybox-static docker-registry debootstrap iproute2)

say() { echo "start-docker: $*"; }
die() { echo "start-docker: error: $*" >&2; exit 1; }

install_missing() {
  local missing=() pkg
  for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    die "missing Debian packages: ${missing[*]}; run this script as root, or install them:" \
      "sudo apt-get install -y ${missing[*]}"
  fi
  say "installing ${missing[*]}..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

# wait_for WHAT LOG PID CMD...: run CMD until it succeeds, at most $wait_s seconds; fail at
# once if process PID (the one just started) has exited.
wait_for() {
  local what=$1 log=$2 pid=$3; shift 3
  local deadline=$((SECONDS + wait_s))
  until "$@" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      fail_with_log "$what exited" "$log"
    elif [ "$SECONDS" -ge "$deadline" ]; then
      fail_with_log "$what did not answer within ${wait_s} s" "$log"
    fi
    sleep 0.2
  done
}

fail_with_log() {
  echo "start-docker: error: $1; last lines of $2:" >&2
  tail -n 20 "$2" >&2 || true
  exit 1
}

registry_answers() {
  # Any HTTP answer (even 401) means a registry is there. curl may be missing: python3 then.
  if command -v curl >/dev/null; then
    curl -s -o /dev/null --max-time 2 "$registry_url"
  else
    python3 -c "import urllib.request,sys
try: urllib.request.urlopen('$registry_url', timeout=2)
except urllib.error.HTTPError: pass" 2>/dev/null
  fi
}

start_dockerd() {
  local error
  if error=$(docker info 2>&1 >/dev/null); then
    say "a Docker engine answers already"
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    die "no Docker engine answers to $(id -un) (${error##*$'\n'}); only root can start" \
      "dockerd: sudo $0"
  fi
  say "starting dockerd (log: $dockerd_log)"
  # setsid: out of the terminal's process group, so a Ctrl-C on `make test` leaves it running.
  DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 setsid nohup dockerd >"$dockerd_log" 2>&1 </dev/null &
  wait_for dockerd "$dockerd_log" $! docker info
  say "dockerd is up"
}

start_registry() {
  if registry_answers; then
    say "a registry answers on 127.0.0.1:5000 already"
    return 0
  fi
  local storage config
  storage=$(mktemp -d /tmp/pier-registry.XXXXXX)
  config=$storage.yml
  sed "s|__STORAGE__|$storage|" "$here/docker-registry.yml" >"$config"
  say "starting docker-registry on 127.0.0.1:5000 (storage: $storage, log: $registry_log)"
  setsid nohup docker-registry serve "$config" >"$registry_log" 2>&1 </dev/null &
  wait_for "docker-registry on 127.0.0.1:5000" "$registry_log" $! registry_answers
  say "registry is up"
}

install_missing
start_dockerd
start_registry
