"""The sandbox that pier runs user code in: local instances and model descriptions.

* **Environment.** Only what the caller gives (a node's env and secret env) plus what pier's
  model server needs: ``PATH``, ``LANG``, ``HOME`` and ``TMPDIR`` (the process's own
  directory) and the variables named in ``pass_env`` that this machine needs (e.g.
  ``OPENBLAS_CORETYPE``). Nothing else of `pier up`'s environment (``PIER_*``,
  ``DOCKER_HOST``, cloud credentials...).
* **Directory.** A fresh one per process under ``root``, never inside pier's data dir:
  0700 and owned by the sandbox user. ``root`` itself is not listable by that user. The
  files a process needs (its model) are copied in, owned by pier and read-only for the
  process; pier's data dir stays 0700 and closed to it.
* **User.** When pier runs as root: an unprivileged system user (``pier-instance`` by
  default; `pier up` creates it with ``useradd --system`` if missing), with its own group
  and no supplementary groups, in a session of its own. Otherwise pier's own user: then
  only file permissions keep the process from pier's files (the data dir is 0700), and
  that is the limit.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pier.domain.errors import RuntimeUnavailable

DEFAULT_USER: Final = "pier-instance"
ROOT_AS_ROOT: Final = Path("/var/lib/pier-instances")
SEARCH_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CHECK_TIMEOUT_S: Final = 60.0
MODEL_SERVER_ENV: Final = {"OPENBLAS_NUM_THREADS": "1", "ORT_DISABLE_TELEMETRY": "1"}
"""Set for every model server pier starts (an instance, forked or exec'd, unless its node
sets them; a model's description) and for the local runtime's fork server. A model
server runs requests on worker threads of its own, so BLAS gets none more (and the fork
server stays single-threaded, as a process that forks must); onnxruntime's telemetry, a
thread and a database in the process's home sending to the internet, stays off."""


@dataclass(frozen=True, slots=True)
class SandboxUser:
    name: str
    uid: int
    gid: int


def default_root() -> Path:
    """Where sandboxed directories live unless configured: outside any data dir."""
    if os.geteuid() == 0:
        return ROOT_AS_ROOT
    return Path(tempfile.gettempdir()) / f"pier-instances-{os.geteuid()}"


def ensure_user(name: str) -> SandboxUser:
    """The sandbox user ``name``, created as a system user (no home, no login) if missing."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        argv = ["useradd", "--system", "--no-create-home", "--user-group",
                "--shell", "/usr/sbin/nologin", name]  # fmt: skip
        try:
            subprocess.run(argv, check=True, capture_output=True, timeout=CHECK_TIMEOUT_S)
        except (OSError, subprocess.SubprocessError) as exc:
            raise RuntimeUnavailable(
                f"cannot create the sandbox user {name!r} for local instances ({exc}); "
                f"create it (useradd --system {name}) or set PIER_SANDBOX__USER"
            ) from None
        entry = pwd.getpwnam(name)
    return SandboxUser(name, entry.pw_uid, entry.pw_gid)


@dataclass(frozen=True, slots=True)
class Sandbox:
    root: Path
    """Sandboxed directories are made here (e.g. /var/lib/pier-instances/<installation>)."""
    user: SandboxUser | None
    """None: processes run as pier's own user (pier is not root)."""
    pass_env: tuple[str, ...] = ()
    """Variables of pier's own environment handed on, when set (machine facts only)."""

    @classmethod
    def prepare(
        cls, root: Path, *, user: str = DEFAULT_USER, pass_env: tuple[str, ...] = ()
    ) -> Sandbox:
        """The sandbox for this process: a sandbox user when running as root."""
        return cls(root, ensure_user(user) if os.geteuid() == 0 else None, pass_env)

    def environment(self, env: Mapping[str, str], home: Path) -> dict[str, str]:
        """The whole environment of a sandboxed process whose own directory is ``home``."""
        passed = {k: os.environ[k] for k in self.pass_env if k in os.environ}
        python_dir = str(Path(sys.executable).parent)
        base = {"PATH": f"{python_dir}:{SEARCH_PATH}", "LANG": "C.UTF-8", "HOME": str(home),
                "TMPDIR": str(home / "tmp")}  # fmt: skip
        return {**base, **passed, **env}

    def make_dir(self, name: str, files: Mapping[str, Path] | None = None) -> Path:
        """A fresh directory of the process's own, with a ``tmp`` in it and a copy of each
        of ``files`` (relative path -> source), readable by the process and writable only
        by pier. The copies are made before the directory is handed to the sandbox user,
        so no sandboxed process can slip a link under them. Instances use their id as
        ``name``; pier's own checks start with ``_``, which no id does."""
        self._make_root()
        path = self.root / name
        path.mkdir(mode=0o700)
        (path / "tmp").mkdir(mode=0o700)
        for target, source in (files or {}).items():
            _copy_read_only(source, path / target)
        if self.user is not None:
            for owned in (path, path / "tmp"):
                os.chown(owned, self.user.uid, self.user.gid)
        return path

    def _make_root(self) -> None:
        """``root`` and its parent: pier's, searchable but not listable by the sandbox user."""
        for directory in (self.root.parent, self.root):
            directory.mkdir(mode=0o711, parents=True, exist_ok=True)
            if directory.stat().st_uid != os.geteuid():
                raise RuntimeUnavailable(
                    f"{directory} belongs to another user; choose another PIER_SANDBOX__ROOT"
                )
            directory.chmod(0o711 if self.user is not None else 0o700)

    def remove_dir(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def popen_options(self, cwd: Path) -> dict[str, Any]:
        """subprocess options: the sandbox user, no supplementary groups, its own session."""
        options: dict[str, Any] = {"cwd": cwd, "start_new_session": True, "close_fds": True}
        if self.user is not None:
            options.update(user=self.user.uid, group=self.user.gid, extra_groups=[])
        return options

    def check_python(self) -> None:
        """Fail unless the sandbox user can run pier's Python (its files may sit in a
        directory only root may enter, such as /root)."""
        workdir = self.make_dir(f"_check-{secrets.token_hex(6)}")
        try:
            result = subprocess.run(
                [sys.executable, "-c", "import pier.modelserver"], capture_output=True,
                env=self.environment({}, workdir), timeout=CHECK_TIMEOUT_S,
                **self.popen_options(workdir),
            )  # fmt: skip
            lines = result.stderr.decode(errors="replace").strip().splitlines()
            problem = None if result.returncode == 0 else (lines or [f"exit {result.returncode}"])
        except (OSError, subprocess.SubprocessError) as exc:
            problem = [str(exc)]
        finally:
            self.remove_dir(workdir)
        if problem is not None:
            who = self.user.name if self.user else "pier's user"
            raise RuntimeUnavailable(
                f"the sandbox user {who} cannot run {sys.executable} ({problem[-1]}); let "
                "it reach pier's Python: scripts/sandbox-user.sh adds the search permission "
                "it lacks (e.g. on /root)"
            )


def _copy_read_only(source: Path, destination: Path) -> None:
    """Copy a file or a directory (links kept as links); 0644 files, 0755 directories."""
    destination.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, destination, symlinks=True)
    else:
        shutil.copyfile(source, destination)
    for path in (destination, *(destination.rglob("*") if source.is_dir() else ())):
        if not path.is_symlink():  # a link is left as it is: chmod would follow it
            path.chmod(0o755 if path.is_dir() else 0o644)
    destination.parent.chmod(0o755)
