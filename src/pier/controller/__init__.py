"""The controller: a level-triggered reconcile loop from desired node specs to instances.

How it fits together, for a newcomer:

- ``loop.Controller`` ticks every ``tick_s``: it reads the nodes (store), what every
  runtime runs, and the gateway's load; then it reconciles each node in a task of its
  own (a slow node never holds up another) and publishes the routes.
- ``node_state.NodeState`` is all it keeps of one node: its tracked instances, crash
  backoff, autoscaler, target, runtime message and lock. It is made when the node is
  first met and dropped as a whole when the node is removed.
- ``tracked.TrackedInstance`` is one instance: runtime facts plus pier's opinion, a frozen
  ``InstanceView`` moved only through the transition table (domain/instance_status.py).
- A reconcile observes (``observe.py``: facts to statuses), plans (``plan.py``, pure: what
  to create and delete), and applies the plan; ``autoscale.py`` and ``backoff.py`` are
  pure too and read the controller's ``clock``.
- Background work never runs inside a tick: health probes (``probes.py``), image pulls
  (``pulls.py``), drains before a removal. Their unexpected failures become one event per
  change (``incidents.py``) and are retried with a backoff; event kinds are
  ``domain.event_kinds.EventKind``.
- ``adoption.py``: what a restart found and kept. The store is reached only through the
  Repository's named operations (store/repository.py), each run off the event loop in
  the controller's one store thread, in order (``store_thread.py``): a slow write never
  stalls the probes or the API.
- Failures carry their retry semantics (``domain/retry.py``): a TemporaryError is tried
  again after its delay, a PermanentError blocks the node's spec until it changes
  (``NodeState.block``), anything else backs off.
"""
