"""Backoff: the delay doubles per failure in a row up to the cap; a success resets it."""

from pier.controller.backoff import Backoff, CrashBackoff


def test_the_delay_doubles_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(base_s=1.0, max_s=4.0)
    assert [backoff.record_failure(now=100.0) for _ in range(4)] == [1.0, 2.0, 4.0, 4.0]
    assert backoff.until == 104.0
    backoff.reset()
    assert backoff.record_failure(now=0.0) == 1.0


def test_a_long_run_of_failures_stays_at_the_cap() -> None:
    backoff = Backoff(base_s=0.5, max_s=60.0)
    delays = [backoff.record_failure(now=0.0) for _ in range(2000)]
    assert delays[-1] == 60.0


def test_a_node_crash_loops_after_three_failures_until_healthy() -> None:
    backoff = CrashBackoff()
    for _ in range(3):
        backoff.record_failure(now=0.0)
    assert backoff.is_crash_looping
    backoff.record_healthy()
    assert not backoff.is_crash_looping and backoff.until == 0.0
