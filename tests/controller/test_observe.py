from pier.controller.observe import ProbeWindow, observe_status
from pier.domain.instance_status import InstanceStatus
from pier.domain.specs import HealthCheck

S = InstanceStatus
HEALTH = HealthCheck(healthy_threshold=2, unhealthy_threshold=3)


def test_statuses_follow_the_probe_window() -> None:
    def seen(previous: InstanceStatus, **window: object) -> InstanceStatus:
        return observe_status(
            previous,
            running=True,
            window=ProbeWindow(**window),  # type: ignore[arg-type]
            health=HEALTH,
        )

    assert seen(S.UNDEFINED) is S.CREATED
    assert seen(S.CREATED, connected=True) is S.STARTED
    assert seen(S.STARTED, connected=True, answered=True, failures=5) is S.PREPARING
    assert seen(S.PREPARING, connected=True, answered=True, passes=1) is S.PREPARING
    assert seen(S.PREPARING, connected=True, answered=True, passes=2) is S.HEALTHY
    assert seen(S.HEALTHY, failures=2) is S.HEALTHY
    assert seen(S.HEALTHY, failures=3) is S.UNHEALTHY
    assert seen(S.UNHEALTHY, passes=2) is S.HEALTHY


def test_exited_and_deleting_keep_their_status() -> None:
    window = ProbeWindow(passes=5)
    assert observe_status(S.PREPARING, running=False, window=window, health=HEALTH) is S.PREPARING
    assert observe_status(S.DELETING, running=True, window=window, health=HEALTH) is S.DELETING
