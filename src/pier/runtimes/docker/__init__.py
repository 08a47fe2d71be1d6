"""The docker runtime: each instance is a container on a Docker engine.

Adoption. Nothing about an instance lives only in pier's memory. Every container pier
creates is named ``pier-<instance_id>`` and labelled ``pier.managed=true``,
``pier.project``, ``pier.node``, ``pier.instance``, ``pier.generation`` and ``pier.port``
(plus the limits that were and were not applied). ``list`` reads the labels back, so
after pier restarts, even after a SIGKILL, a new DockerRuntime finds the same containers
with the same endpoints and the controller adopts them instead of starting duplicates.
The engine keeps the state; ``state_dir`` is accepted for symmetry with the local runtime
and not used. Containers that carry no ``pier.managed`` label are never touched.

Digest pinning. A tag is a pointer that can move between two instance starts.
``resolve_image`` pulls once and returns ``repo@sha256:...`` (the image's RepoDigests for
that repository), and the controller creates every instance of a node generation from
that reference, so all instances run the same bits, and a rolling update is the only way
new bits arrive. An image that never came from a registry under that name (built or
tagged on this engine) cannot be pinned by a registry digest; it is pinned by its image
ID (``sha256:...``), which the engine runs just as well.

init=True. Many servers (busybox httpd, shell scripts, naive Python servers) ignore
SIGTERM when they run as PID 1, because the kernel gives PID 1 no default signal
handlers; ``docker stop`` then waits its whole timeout before SIGKILL. Docker's init
(tini) as PID 1 forwards signals and reaps zombies, so stops take a fraction of a second
and crashed children do not pile up.

Ports. The instance's port, and a separate health or metrics port when the node has one
(``extra_ports``, labelled ``pier.extra-ports``), are published on 127.0.0.1 only, with
host ports the engine picks, so two instances of one node never collide and nothing is
exposed beyond this machine: clients reach instances through pier's gateway, which runs
here.

Mounts. A model served from an image is bind-mounted read-only from pier's model store,
so the engine must run on the machine that holds pier's data dir (a local engine, or
DOCKER_HOST pointing at this machine's engine).

Command and args follow Kubernetes: ``spec.command`` replaces the image's ENTRYPOINT,
``spec.args`` its CMD, and empty means the image's own. ``{port}`` in either is replaced
by the container port, which the container also gets as ``PIER_PORT``.
"""

from __future__ import annotations

from pier.runtimes.docker.engine import probe_engine
from pier.runtimes.docker.images import ImagePullFailed, PullProgress
from pier.runtimes.docker.limits import EngineFacts, plan_limits
from pier.runtimes.docker.runtime import DockerRuntime

__all__ = [
    "DockerRuntime",
    "EngineFacts",
    "ImagePullFailed",
    "PullProgress",
    "plan_limits",
    "probe_engine",
]
