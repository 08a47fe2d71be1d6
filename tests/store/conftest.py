"""The store's contract runs on every store pier supports: each test here that takes
``store_url``, ``engine`` or ``repo`` runs on SQLite and on PostgreSQL (the fixtures are
in tests/conftest.py, where the control plane's tests take them too)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine


@pytest.fixture
def engine(store_engine: Engine) -> Engine:
    """An engine on a migrated store of its own, on each store."""
    return store_engine
