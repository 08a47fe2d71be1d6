#!/usr/bin/env bash
# A real two-machine Docker Swarm on this host, made only of daemons this script starts:
# two dockerd, each in a network namespace of its own joined by a veth pair to a bridge,
# which the host reaches by a veth pair too. The main Docker engine is never touched (no `docker swarm init/leave` on it).
#
#   scripts/swarm.sh up     form the swarm; prints KEY=VALUE lines (DOCKER_HOST of the
#                           manager, the worker's socket, the machines' addresses)
#   scripts/swarm.sh down   stop everything `up` started (by pid and name), idempotent
#   scripts/swarm.sh kill-worker   SIGKILL the worker machine's daemon, its containerd and
#                           its containers: the machine dies
#   scripts/swarm.sh forward PORT   forward 127.0.0.1:PORT of every machine to the host's
#                           (a second registry, one that needs a login)
#
# Registry: in each namespace 127.0.0.1:5000 is forwarded to the host's 127.0.0.1:5000
# (scripts/netns-forward.py), so `127.0.0.1:5000/...` names the same images on every
# machine and the engines trust it as an insecure registry by default.
#   env: PIER_SWARM_ID (0-254, default 7: the names, the directory /tmp/pier-swarm-ID and
#        the network 10.231.ID.0/24 of one swarm; two test sessions use two ids),
#        PIER_SWARM_WAIT_S (default 30)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
id=${PIER_SWARM_ID:-7}
[[ "$id" =~ ^[0-9]{1,3}$ && "$id" -le 254 ]] || { echo "swarm: PIER_SWARM_ID must be 0-254" >&2; exit 2; }
dir=/tmp/pier-swarm-$id
net=10.231.$id
wait_s=${PIER_SWARM_WAIT_S:-30}
host_veth=piersw$id
machines=(manager worker)
declare -A address=([manager]=$net.2 [worker]=$net.3)

say() { echo "swarm: $*" >&2; }
die() { echo "swarm: error: $*" >&2; exit 1; }
netns_of() { echo "pier-swarm-$id-$1"; }
sock_of() { echo "$dir/$1/docker.sock"; }
dock() { local m=$1; shift; DOCKER_HOST="unix://$(sock_of "$m")" docker "$@"; }

wait_for() {  # wait_for WHAT PID CMD...: until CMD succeeds; fail when PID exits or at timeout
  local what=$1 pid=$2; shift 2
  local deadline=$((SECONDS + wait_s))
  until "$@" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || die "$what exited; see $dir/*.log"
    [ "$SECONDS" -lt "$deadline" ] || die "$what did not answer within ${wait_s} s"
    sleep 0.2
  done
}

network_up() {
  # The bridge lives in a namespace of its own ("the LAN"): bridged traffic then meets that
  # namespace's empty iptables, not the host's FORWARD chain (DROP, set by Docker).
  local lan
  lan=$(netns_of lan)
  ip netns list | grep -qw "$lan" || ip netns add "$lan"
  ip netns exec "$lan" ip link show br0 >/dev/null 2>&1 \
    || ip netns exec "$lan" ip link add br0 type bridge
  ip netns exec "$lan" ip link set br0 up
  if ! ip link show "$host_veth" >/dev/null 2>&1; then
    ip link add "$host_veth" type veth peer name host netns "$lan"
  fi
  ip addr replace "$net.1/24" dev "$host_veth"
  ip link set "$host_veth" up
  ip netns exec "$lan" ip link set host master br0 up
  local m ns
  for m in "${machines[@]}"; do
    ns=$(netns_of "$m")
    ip netns list | grep -qw "$ns" || ip netns add "$ns"
    if ! ip netns exec "$lan" ip link show "$m" >/dev/null 2>&1; then
      ip netns exec "$lan" ip link add "$m" type veth peer name eth0 netns "$ns"
    fi
    ip netns exec "$lan" ip link set "$m" master br0 up
    ip netns exec "$ns" ip addr replace "${address[$m]}/24" dev eth0
    ip netns exec "$ns" ip link set lo up
    ip netns exec "$ns" ip link set eth0 up
    ip netns exec "$ns" ip route replace default via "$net.1"
  done
}

start_daemon() {
  local m=$1 root="$dir/$1"
  if dock "$m" info >/dev/null 2>&1; then return 0; fi
  mkdir -p "$root"
  # nsenter, not `ip netns exec`: that one remounts /sys and hides the cgroup mounts.
  # unshare --uts: each machine has a hostname of its own (the swarm's node names).
  # No DOCKER_SERVICE_PREFER_OFFLINE_IMAGE: with it the tasks never pull their images.
  setsid nohup nsenter --net="/var/run/netns/$(netns_of "$m")" \
    unshare --uts sh -c 'hostname "$0" && exec "$@"' "swarm$id-$m" dockerd \
    --data-root "$root/data" --exec-root "$root/exec" --pidfile "$root/docker.pid" \
    -H "unix://$(sock_of "$m")" \
    >"$dir/$m-dockerd.log" 2>&1 </dev/null &
  echo $! >"$root/nsenter.pid"
  wait_for "dockerd of $m" $! dock "$m" info
}

start_forwarder() {  # start_forwarder PORT: 127.0.0.1:PORT of each machine to the host's
  local port=$1 pidfile="$dir/forward-$1.pid" logfile="$dir/forward-$1.log"
  [[ "$port" =~ ^[0-9]{1,5}$ ]] || die "forward: PORT must be a number"
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && return 0
  local namespaces=() m
  for m in "${machines[@]}"; do namespaces+=("$(netns_of "$m")"); done
  setsid nohup python3 "$here/netns-forward.py" "$port" "${namespaces[@]}" \
    >"$logfile" 2>&1 </dev/null &
  echo $! >"$pidfile"
  wait_for "forwarder of port $port" $! grep -q ready "$logfile"
}

form_swarm() {
  local state
  state=$(dock manager info --format '{{.Swarm.LocalNodeState}}')
  if [ "$state" != active ]; then
    dock manager swarm init --advertise-addr "${address[manager]}" \
      --dispatcher-heartbeat 1s >/dev/null
  fi
  state=$(dock worker info --format '{{.Swarm.LocalNodeState}}')
  if [ "$state" != active ]; then
    local token
    token=$(dock manager swarm join-token -q worker)
    dock worker swarm join --token "$token" "${address[manager]}:2377" >/dev/null
  fi
  wait_for "the worker in the swarm" "$$" workers_ready
}

workers_ready() {
  [ "$(dock manager node ls --format '{{.Status}}' | grep -c Ready)" -eq 2 ]
}

up() {
  [ "$(id -u)" -eq 0 ] || die "forming the test swarm needs root (namespaces, veth, dockerd)"
  mkdir -p "$dir"
  network_up
  local m
  for m in "${machines[@]}"; do start_daemon "$m"; done
  start_forwarder 5000
  form_swarm
  echo "PIER_SWARM_DIR=$dir"
  echo "PIER_SWARM_DOCKER_HOST=unix://$(sock_of manager)"
  echo "PIER_SWARM_WORKER_HOST=unix://$(sock_of worker)"
  echo "PIER_SWARM_MANAGER_ADDR=${address[manager]}"
  echo "PIER_SWARM_WORKER_ADDR=${address[worker]}"
}

kill_machine() {  # SIGKILL every process of machine $1: dockerd, containerd, shims, tasks
  local m=$1 pids
  pids=$(pgrep -f -- "$dir/$m/" || true)
  local pid all=()
  for pid in $pids; do
    all+=("$pid")
    # a shim's children are the machine's container processes
    all+=($(pgrep -P "$pid" || true))
  done
  local p
  for p in "${all[@]}"; do
    # container processes have children of their own (tini -> server)
    all+=($(pgrep -P "$p" || true))
  done
  [ ${#all[@]} -eq 0 ] || kill -9 "${all[@]}" 2>/dev/null || true
}

down() {
  local m
  local pidfile
  for pidfile in "$dir"/forward-*.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  for m in "${machines[@]}"; do
    if dock "$m" info >/dev/null 2>&1; then
      # the daemons' own containers stop with them; remove them so no shim outlives them
      dock "$m" service ls -q 2>/dev/null | xargs -r dock "$m" service rm >/dev/null 2>&1 || true
    fi
  done
  for m in "${machines[@]}"; do kill_machine "$m"; done
  ip link del "$host_veth" 2>/dev/null || true
  for m in "${machines[@]}" lan; do ip netns del "$(netns_of "$m")" 2>/dev/null || true; done
  for m in "${machines[@]}"; do
    # container mounts under the data root: lazily unmounted before the tree goes
    grep -o " $dir/$m/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  done
  rm -rf "$dir"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  kill-worker) kill_machine worker ;;
  forward) [ -d "$dir" ] || die "no swarm $id (scripts/swarm.sh up)"; start_forwarder "${2:-}" ;;
  *) echo "usage: $0 up|down|kill-worker|forward PORT" >&2; exit 2 ;;
esac
