"""The passive-health rule on plain values: a probe round is skipped only when every read
since the previous round had the instance's figures, its answers moved and nothing
failed; a failure seen while the probe is paused wakes it."""

from __future__ import annotations

from pier.controller.passive import InstanceTraffic, TrafficWindow


def window_after(*reads: InstanceTraffic | None) -> TrafficWindow:
    """A window whose previous round saw ``InstanceTraffic(5)``, then ``reads``."""
    window = TrafficWindow()
    window.counted(InstanceTraffic(5))
    assert not window.take()  # the first read has nothing to compare with: a probe
    for read in reads:
        window.counted(read)
    return window


def test_a_round_is_skipped_when_answers_moved_without_a_failure() -> None:
    window = window_after(InstanceTraffic(7), InstanceTraffic(9))
    assert window.take()
    assert not window.take()  # no read since: the probe runs
    window.counted(InstanceTraffic(9))
    assert not window.take()  # the traffic stopped


def test_a_failure_a_missing_figure_or_a_count_gone_back_means_a_probe() -> None:
    assert not window_after(InstanceTraffic(9, 1)).take()  # failed
    assert not window_after(InstanceTraffic(7), None, InstanceTraffic(9)).take()  # no figure
    assert not window_after(InstanceTraffic(2), InstanceTraffic(9)).take()  # counted afresh


def test_a_failure_wakes_a_paused_probe_only() -> None:
    window = window_after(InstanceTraffic(6), InstanceTraffic(7, 1))
    assert not window.woken.is_set()  # the probe was not paused: it runs on its interval
    assert not window.take()
    window.counted(InstanceTraffic(8, 1))
    assert window.take()  # paused from here
    window.counted(InstanceTraffic(9, 1))
    assert not window.woken.is_set()
    window.counted(InstanceTraffic(9, 2))
    assert window.woken.is_set()
    assert not window.take() and not window.woken.is_set()


def test_at_most_max_skips_rounds_in_a_row_are_skipped_then_one_probes() -> None:
    window = TrafficWindow(max_skips=2)
    answered = 1
    window.counted(InstanceTraffic(answered))
    rounds = []
    for _ in range(6):  # traffic answers all along
        answered += 3
        window.counted(InstanceTraffic(answered))
        rounds.append(window.take())
    assert rounds == [False, True, True, False, True, True]  # the first has no earlier read


def test_a_failed_check_is_probed_again_whatever_the_traffic() -> None:
    window = window_after(InstanceTraffic(7), InstanceTraffic(9))
    assert not window.take(may_skip=False)  # answered, but the last check failed
    window.counted(InstanceTraffic(12))
    assert window.take()  # a check passed since: the traffic stands for the round again
