"""Engine triton: a model node's instance runs NVIDIA's ``tritonserver`` instead of pier's
model server.

``python -m pier.modelserver.triton`` (see :mod:`.__main__`) writes a Triton model
repository for the node's model (:mod:`.repository`) and then becomes ``tritonserver``
on the instance's port, so the gateway, the health checks (``/v2/health/ready``) and the
metrics scrape (Triton's ``/metrics`` on its own port) reach Triton itself. The server
comes from PyPI's ``nvidia-pytriton``, which ships the binary, its Python backend and
the backend's stubs for each Python version (:mod:`.distribution`). That Python backend
is the only backend in the wheel, so every pier format runs there through pier's own
loaders (:mod:`.backend`); a pushed Triton model directory runs as it is.
"""
