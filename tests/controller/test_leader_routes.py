"""Where a following `pier up` reads the leader's routes: the API URL in the leader's
name in the lease (server.lease_holder)."""

from __future__ import annotations

import pytest

from pier.controller.leader_routes import leader_url


@pytest.mark.parametrize(
    ("holder", "url"),
    [
        ("box1 127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("box1 10.0.0.7:8080", "http://10.0.0.7:8080"),
        ("box1 0.0.0.0:8000", "http://box1:8000"),  # listening everywhere: the machine
        ("box1 :::8000", "http://box1:8000"),
        ("box1 ::1:8000", "http://[::1]:8000"),
        ("box1 [::1]:8000", "http://[::1]:8000"),
    ],
)
def test_the_leaders_url_comes_from_its_name_in_the_lease(holder: str, url: str) -> None:
    assert leader_url(holder) == url


@pytest.mark.parametrize("holder", ["", "box1", "box1 127.0.0.1", "box1 127.0.0.1:http", " :80"])
def test_a_name_of_another_form_names_no_leader(holder: str) -> None:
    assert leader_url(holder) is None
