"""Stop signals stop everything `pier up` started, also when nobody reads its output
any more (``pier up | tee log``, then Ctrl-C: tee is gone before pier says a word)."""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest

from tests.conftest import IrisModel, PierProcess
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
