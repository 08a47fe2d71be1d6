"""The local runtime: each instance is a process on this machine.

Process group. Every instance starts in a session (and so a process group) of its own
(``start_new_session=True``). A Ctrl-C on the terminal running ``pier up`` goes to the
terminal's foreground process group, so it stops pier but not the instances; stopping them
on a clean shutdown is the controller's decision. ``delete`` signals the whole group, so
the workers a server forks are stopped with it.

Adoption. Nothing about an instance lives only in pier's memory. ``create`` writes
``<state_dir>/<instance_id>.json`` (atomically: tmp file + rename) with the instance's
project, node, generation, pid, port and the process's create time. After pier restarts,
even after a SIGKILL, a new LocalRuntime on the same state_dir reads those files and
``list`` reports the instances that still run, with the same endpoint, so the controller
adopts them instead of starting duplicates. A pid alone is not an identity (the kernel
reuses pids), so an instance counts as running only while a process with its pid *and*
its create time exists and is not a zombie.

Exit codes. Only the parent of a process learns its exit status. The Popen handles of
the processes this OS process started are kept in one process-wide table: polling them
reaps zombies and gives the exit code, whichever LocalRuntime object started or adopted
the instance. The code follows the shell and Docker convention: killed by signal N reads
as 128 + N (SIGKILL: 137). An instance adopted from an earlier pier process was reparented
when that process died, so its exit code is unknown (None).

Model servers. An instance whose command is pier's model server is forked from a fork
server that has imported it already (forks.py, pier.modelserver.forkserver): the fork
server is its parent, reaps it and reports its exit code, which the children table then
holds as a Popen's. Everything above holds for it as for an exec'd instance (its own
session, its directory, environment and limits; adoption after a restart).

Limits. The configuration is applied in the child before exec (or, forked, before the
model server runs): CPU affinity to ``vcpu`` CPUs (starting CPU rotated per instance, so
instances spread over the machine) and RLIMIT_DATA for memory. RLIMIT_AS would be
stricter on paper but counts address space that numpy and onnxruntime reserve without
using, so it breaks them well below the configured memory. There is no GPU isolation.
What was and was not applied is reported in ``Observed.limits_applied`` /
``limits_not_applied``.

Modules: ``runtime`` (LocalRuntime), ``state`` (the state file), ``processes`` (process
groups and the children table), ``limits`` (CPU affinity and memory), ``logs`` (log
files), ``forks`` (model servers forked from a fork server).
"""

from __future__ import annotations

from pier.runtimes.local.runtime import LocalRuntime

__all__ = ["LocalRuntime"]
