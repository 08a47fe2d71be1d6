"""What a newcomer sees following the README, with a real `pier up`: error lines that say
what is wrong (and the name they meant), tables that fit, the PID to kill, and events
that follow the node."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

from tests.conftest import IrisModel, PierProcess


def as_from_a_terminal() -> None:
    """Give the child the SIGINT a shell gives a foreground command (default, unblocked),
    whatever this test process inherited or had set by the tests before it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def signal_state(pid: int) -> str:
    """The process's blocked, ignored and caught signal masks (to tell why one was missed)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return " ".join(
        line for line in status.splitlines() if line.startswith(("SigBlk", "SigIgn", "SigCgt"))
    )


TYPO = "error: node 'irs' not found in project 'default'; did you mean 'iris'?\n"


def test_errors_say_what_is_wrong_and_suggest_the_name_meant(
    pier: PierProcess, iris_onnx: IrisModel, tmp_path: Path
) -> None:
    pushed = pier.cli("model", "push", str(iris_onnx.path))  # --name: the file's stem
    assert "pushed model iris version 1" in pushed.stdout
    pier.cli("node", "create", "iris", "--model", "iris", "--min", "0")

    got = pier.cli("node", "get", "irs", check=False)
    assert (got.returncode, got.stderr) == (1, TYPO)
    wrong_model = pier.cli("node", "create", "web", "--model", "irsi", check=False)
    assert wrong_model.returncode == 1
    assert wrong_model.stderr == (
        "error: model 'irsi' not found in project 'default'; did you mean 'iris'?\n"
    )
    pier.wait_for(lambda: pier.node("iris")["routed"], what="the gateway to route iris")
    called = pier.cli("call", "irs", "/v2/health/ready", check=False)
    assert (called.returncode, called.stderr, called.stdout) == (1, TYPO, "")

    notes = tmp_path / "iris.txt"
    notes.write_text("not a model")
    not_a_model = pier.cli("model", "push", str(notes), "--format", "onnx", check=False)
    assert not_a_model.returncode == 1
    assert not_a_model.stderr.startswith("error: iris.txt is not a model pier can serve: ")

    in_use = pier.cli("model", "delete", "iris", check=False)
    assert in_use.returncode == 1
    assert in_use.stderr.startswith("error: model 'iris' is in use by node 'iris'")
    assert [m["version"] for m in pier.cli_json("model", "list")["models"]] == [1]
    pier.cli("node", "delete", "iris", "--wait")
    assert "deleted model iris version(s) 1" in pier.cli("model", "delete", "iris").stdout
    assert pier.cli_json("model", "list")["models"] == []
    assert not list((pier.data_dir / "models" / "blobs").iterdir())

    assert "gateway unavailable" not in pier.log_path.read_text()  # a normal start


def test_a_scaled_to_zero_node_and_an_update_that_shows_only_what_follows(
    pier: PierProcess, iris_onnx: IrisModel
) -> None:
    pier.cli("model", "push", str(iris_onnx.path), "--name", "iris")
    pier.cli("node", "create", "iris", "--model", "iris", "--min", "0", "--max", "2")
    listing = pier.cli("node", "list").stdout
    assert "0/0 (scaled to zero)" in listing and "0/0 Healthy" not in listing

    updated = pier.cli("node", "update", "iris", "--max", "3", "--wait")
    assert "node_updated" in updated.stderr
    assert "node_created" not in updated.stderr  # the history before the update stays out


def test_the_pid_column_names_the_process_to_kill_and_events_follow(
    pier: PierProcess, iris_onnx: IrisModel
) -> None:
    pier.cli("model", "push", str(iris_onnx.path), "--name", "iris")
    pier.cli("node", "create", "iris", "--model", "iris", "--min", "1", "--wait")
    [instance] = pier.instances("iris")
    table = pier.cli("node", "instances", "iris", env={"COLUMNS": "80"}).stdout  # piped
    header, row = table.splitlines()
    assert header.split()[4] == "PID"
    pid = int(row.split()[4])
    assert pid in pier.instance_pids()
    assert instance["endpoint"] in row.split()  # never cut or wrapped when piped

    follower = subprocess.Popen(
        [*pier.cli_argv(), "node", "events", "iris", "--follow"],
        env=pier.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=as_from_a_terminal,
    )  # fmt: skip
    lines: list[str] = []
    failed = threading.Event()

    def read() -> None:
        assert follower.stdout is not None
        for line in follower.stdout:
            lines.append(line)
            if "instance_failed" in line:
                failed.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        pier.wait_for(lambda: any("node_created" in line for line in lines), what="history")
        os.kill(pid, signal.SIGKILL)  # the README's kill -9, with the PID from the table
        assert failed.wait(60), f"no instance_failed event followed: {lines}"
    finally:
        follower.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            _, err = follower.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"Ctrl-C did not stop it: {signal_state(follower.pid)}") from None
    assert follower.returncode == 0, err
    assert "Traceback" not in err and "Aborted" not in err
