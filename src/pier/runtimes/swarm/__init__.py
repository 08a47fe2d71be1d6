"""The swarm runtime: each instance is a Docker Swarm service of one replica.

The mapping. pier owns every instance on its own (status, health, draining, the spec
generation it was made from) and creates and deletes them one by one, so one service per
*instance*, not per node: ``pier-<instance_id>``, replicated, ``replicas=1``, restart
condition ``none``. The swarm chooses the machine (spreading a node's services over the
machines, within the placement constraints and the reservations) and pulls the image
there; it never restarts or replaces a task on its own, since a replacement is pier's
decision, made as for every runtime: an instance that exited, or whose machine was lost,
reads ``exited`` and the controller starts another one, which the swarm places on a
machine that is still there. One service per node with N replicas would let the swarm
choose which instance to stop on a scale-down, and hide a task's restarts from pier.

Labels. Services and their containers carry the docker runtime's labels
(``pier.managed``, ``pier.installation``, ``pier.project``, ``pier.node``,
``pier.instance``, ``pier.generation``, ``pier.port``, the limits), so ``list`` finds
them again after pier restarts (adoption) and never touches services without them.

Endpoints. The kernel here has no IPVS, so no virtual IPs and no routing mesh: services
use ``endpoint_mode=dnsrr`` and publish each port in ``host`` mode on a port the machine
picks. An instance's endpoint is its task's machine address (as the swarm has it, the
advertise address) and that published port; the gateway connects there directly.

Limits. The configuration's CPUs and memory are the service's limits and also its
reservations (the scheduler places a task only where they fit), capped at the largest
machine. GPUs are reserved as the ``gpu`` generic resource on machines whose dockerd
offers it (``--node-generic-resource gpu=...``). ``placement`` constraints come from the
node spec (``--placement node.labels.gpu==true``).

Images. ``resolve_image`` pulls on the manager (with the node's registry secret) and pins
the digest; each service is created with those credentials as its registry auth, so the
machine its task lands on pulls the digest itself. A task that machine rejects (it could
not get the image) makes ``create`` raise TaskRejected, naming the machine: permanent,
so the node waits for a new spec instead of making and losing an instance per backoff.

Stopping. The swarm stops a task with the grace its service was created with
(``stop_grace_s``, pier's ``controller.stop_grace_s``), SIGKILL after it; ``delete``
removes the service and waits until the container has stopped.

What the manager's API cannot give: stats of containers on other machines (read as
unknown), and files on other machines: a model mounted from pier's data dir must be at
the same path on every machine (a shared file system).
"""

from __future__ import annotations

from pier.runtimes.swarm.runtime import SwarmRuntime

__all__ = ["SwarmRuntime"]
