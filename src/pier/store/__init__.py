"""Persistence: SQLAlchemy tables, the Repository, Alembic migrations."""

from pier.store.database import create_store_engine, migrate
from pier.store.repository import Repository

__all__ = ["Repository", "create_store_engine", "migrate"]
