"""``python -m pier.modelserver.triton``: write the model repository, then become
``tritonserver`` serving it.

    python -m pier.modelserver.triton --name NAME --format FMT --path PATH
        --repository DIR --port N --metrics-port N [--version 1] [--host 127.0.0.1]
        [--workers 1] [--max-batch-size 1] [--batch-delay-ms 0] [--example REQUEST.json]

The process execs tritonserver (same pid, so signals and exit status are Triton's):
HTTP on ``--port`` (no gRPC), metrics on ``--metrics-port``, both on ``--host``.
Exit status 1, with the reason on stderr, when no tritonserver is installed
(:mod:`.distribution`) or the repository cannot be written (a model that does not load).
The model is warmed up in Triton's Python backend as in pier's own server, on
``--example`` when given (see :mod:`.backend`): Triton reports it ready once warm, and a
failed warm-up stops tritonserver with ``model load failed`` and the reason in its log.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import structlog

from pier.modelserver.triton.distribution import (
    TritonDistribution,
    TritonNotInstalled,
    find_distribution,
)
from pier.modelserver.triton.repository import write_backends, write_repository
from pier.modelserver.triton.stub_environment import stub_bin_directory
from pier.observability.logging import configure_logging

log = structlog.get_logger("pier.modelserver.triton")

EXIT_TIMEOUT_S = 5
"""How long tritonserver waits for requests in flight once told to stop."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pier.modelserver.triton",
        description="Serve one model with NVIDIA's tritonserver on a repository pier writes.",
    )
    parser.add_argument("--name", required=True, help="model name used in /v2/models/{name}")
    parser.add_argument("--format", required=True, help="onnx, sklearn, python or triton")
    parser.add_argument("--path", required=True, type=Path, help="model file or directory")
    parser.add_argument("--version", default="1", help="model version (default: 1)")
    parser.add_argument("--repository", required=True, type=Path, help="where to write it")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", required=True, type=int, help="Triton's HTTP port")
    parser.add_argument("--metrics-port", required=True, type=int, help="Triton's metrics port")
    parser.add_argument("--workers", type=int, default=1, help="model instances (default: 1)")
    parser.add_argument("--max-batch-size", type=int, default=1, help="dynamic batching: rows")
    parser.add_argument("--batch-delay-ms", type=float, default=0.0, help="dynamic batching: delay")
    parser.add_argument("--example", type=Path, help="a V2 JSON request for the warm-up")
    return parser.parse_args(argv)


def server_argv(args: argparse.Namespace, distribution: TritonDistribution) -> list[str]:
    """tritonserver's command line for the repository written under ``args.repository``."""
    return [
        str(distribution.server),
        "--model-repository", str(args.repository / "models"),
        "--backend-directory", str(args.repository / "backends"),
        "--http-address", args.host, "--http-port", str(args.port),
        "--metrics-address", args.host, "--metrics-port", str(args.metrics_port),
        "--allow-grpc", "false", "--allow-gpu-metrics", "false",
        "--exit-timeout-secs", str(EXIT_TIMEOUT_S),
        "--model-control-mode", "none", "--strict-readiness", "true",
        "--log-info", "false",  # its tables would push a load failure out of the log's tail
    ]  # fmt: skip


def server_environment(
    environ: Mapping[str, str], distribution: TritonDistribution, bin_dir: Path
) -> dict[str, str]:
    """The environment tritonserver runs in: ``bin_dir``'s Python first on PATH (the
    Python backend's stub runs it, with pier importable: :mod:`.stub_environment`) and
    its libpython, and the wheel's libraries, on LD_LIBRARY_PATH (else the stub loads
    another libpython and crashes)."""
    import sysconfig

    libraries = [str(sysconfig.get_config_var("LIBDIR"))]
    if distribution.libs is not None:
        libraries.append(str(distribution.libs))
    if environ.get("LD_LIBRARY_PATH"):
        libraries.append(environ["LD_LIBRARY_PATH"])
    return {
        **environ,
        "PATH": os.pathsep.join([str(bin_dir), environ.get("PATH", os.defpath)]),
        "LD_LIBRARY_PATH": os.pathsep.join(libraries),
    }


def main(argv: list[str] | None = None) -> int:
    """Write the repository and exec tritonserver; return 1 if either cannot be done."""
    args = parse_args(argv)
    configure_logging()
    try:
        distribution = find_distribution()
    except TritonNotInstalled as exc:
        log.error("tritonserver not found", error=str(exc))
        return 1
    try:
        write_repository(
            args.repository / "models", name=args.name, version=args.version,
            fmt=args.format, model=args.path, workers=args.workers,
            max_batch_size=args.max_batch_size, batch_delay_s=args.batch_delay_ms / 1000,
            example=args.example,
        )  # fmt: skip
        write_backends(args.repository / "backends", distribution)
        bin_dir = stub_bin_directory(args.repository / "stub-python", distribution.stub_numpy)
    except Exception as exc:
        log.error(
            "model repository not written", model=args.name, error=f"{type(exc).__name__}: {exc}"
        )
        return 1
    argv_ = server_argv(args, distribution)
    log.info("starting tritonserver", model=args.name, port=args.port, server=argv_[0])
    sys.stderr.flush()
    os.execve(argv_[0], argv_, server_environment(os.environ, distribution, bin_dir))


if __name__ == "__main__":
    sys.exit(main())
