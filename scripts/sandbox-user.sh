#!/usr/bin/env bash
# The unprivileged user that local instances run as when pier runs as root (`pier up`
# creates it too), and search permission for it on the directories above the Python that
# runs pier's model server: a Python installed under /root (pyenv) is otherwise out of its
# reach. Only the execute (search) bit for others is added, never read: nobody can list
# those directories. Idempotent; does nothing when not run as root.
#   usage: scripts/sandbox-user.sh [PYTHON]   (default .venv/bin/python)
#   env: PIER_SANDBOX__USER (default pier-instance)
set -euo pipefail

user=${PIER_SANDBOX__USER:-pier-instance}
python=${1:-.venv/bin/python}
python="$(cd "$(dirname "$python")" && pwd)/$(basename "$python")"

say() { echo "sandbox-user: $*"; }

[ "$(id -u)" -eq 0 ] || exit 0
if ! getent passwd "$user" >/dev/null; then
  useradd --system --no-create-home --user-group --shell /usr/sbin/nologin "$user"
  say "created system user $user"
fi

runs_as_user() {
  (cd / && runuser -u "$user" -- env -i PATH=/usr/bin:/bin "$python" -c 'import pier') \
    >/dev/null 2>&1
}

runs_as_user && exit 0
# The directories Python reads from: its own prefix, the venv, pier's package.
paths=$("$python" -c 'import os, sys, pier
print(os.path.realpath(sys.executable)); print(sys.base_prefix); print(sys.prefix)
print(os.path.dirname(os.path.realpath(pier.__file__)))')
while read -r path; do
  dir=""
  IFS=/ read -ra parts <<<"${path#/}"
  for part in "${parts[@]}"; do  # from / down: a directory is reached through its parents
    dir="$dir/$part"
    [ -d "$dir" ] || break
    if ! runuser -u "$user" -- test -x "$dir"; then
      chmod o+x "$dir"
      say "added search permission for others on $dir"
    fi
  done
done <<<"$paths"
runs_as_user || { echo "sandbox-user: error: $user still cannot run $python" >&2; exit 1; }
