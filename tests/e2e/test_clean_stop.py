"""Stop signals stop everything `pier up` started, also when nobody reads its output
any more (``pier up | tee log``, then Ctrl-C: tee is gone before pier says a word)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.conftest import IrisModel, PierProcess, free_port
from tests.e2e.test_model_node_end_to_end import push_and_create
from tests.e2e.test_store_unavailable import is_gone


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP], ids=["SIGINT", "SIGHUP"])
def test_stop_signal_with_output_to_a_closed_pipe_stops_everything(
    pier_factory: Callable[..., PierProcess], iris_onnx: IrisModel, sig: signal.Signals
) -> None:
    pier = pier_factory(start=False)
    pier.start(pipe_through=["cat"])
    push_and_create(pier, iris_onnx, instances=1)
    started = [*pier.instance_pids(), pier.gateway_pid()]
    assert pier.reader is not None
    pier.reader.kill()
    pier.reader.wait()
    pier.stop(sig)
    assert [pid for pid in started if not is_gone(pid)] == []


def test_a_pier_up_that_does_not_start_in_time_is_stopped_by_the_test(tmp_path: Path) -> None:
    # A harness check: a start that fails must not leave a `pier up` burning the cores
    # the rest of the suite shares.
    pier = PierProcess(tmp_path / "data", free_port(), free_port())
    with pytest.raises(AssertionError, match="did not start"):
        pier.start(timeout_s=0.01)
    assert pier.proc is not None and pier.proc.poll() is not None
    assert not [p for p in psutil.process_iter(["cmdline"])
                if str(pier.data_dir) in " ".join(p.info["cmdline"] or [])]  # fmt: skip
