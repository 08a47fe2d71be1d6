"""pier's own time series: points per (project, node, instance, field), downsampled.

A file of its own beside the SQL store (``series.db``, stdlib sqlite3, WAL): samples are
written every few seconds, and keeping them out of the control store keeps those writes
off its write lock and out of its migrations; losing the file loses only history.

Each sample goes into three tiers at once: 5 s points (kept an hour), 1 min points (a
day) and 10 min points (a week); retentions are settable. A 5 s point is written with
its sample; a coarser one only once it closes (the first sample of the next minute, or
ten), or when the store closes: three rows per sample would be most of the control
plane's idle cost with a hundred nodes. Until then a read answers its open points from
the finer tier's (a 10 min point from the minutes closed in it and the 5 s points of
the open one), and a store opened again after a crash rebuilds its open points the same
way. A point holds what adds up:
``total`` and ``weight`` (a counter's increase and the seconds it covers, or a gauge's
sum and number of samples: ``total / weight`` is the rate or the mean either way) and,
for a latency histogram, the increase of each bucket, so quantiles of a coarse point are
true quantiles of all the requests it covers, never averages of finer quantiles.

Not thread-safe: one writer thread (the sampler) and readers each open their own store.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import structlog

log = structlog.get_logger(__name__)

TIER_STEPS_S: Final = (5, 60, 600)
_FINEST: Final = TIER_STEPS_S[0]
ALIAS_FIELD: Final = "alias."
"""Prefix of an alias's fields: its series are kept under the alias's name, one per
node behind it (the ``instance`` column holds the node's name)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    project TEXT NOT NULL, node TEXT NOT NULL, instance TEXT NOT NULL, field TEXT NOT NULL,
    UNIQUE (project, node, field, instance)
);
CREATE TABLE IF NOT EXISTS points (
    series INTEGER NOT NULL, step INTEGER NOT NULL, t INTEGER NOT NULL,
    total REAL NOT NULL, weight REAL NOT NULL, buckets TEXT,
    PRIMARY KEY (series, step, t)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS points_by_age ON points (step, t);
"""
"""A point names its series by number (``series.id``): its key is three integers, not
four names, which halves what a write costs. ``points_by_age``: the retention delete of
every write finds old points by tier and time without scanning the table."""

_UPGRADE = (
    """
DROP INDEX IF EXISTS points_by_age;
ALTER TABLE points RENAME TO points_by_name;
"""
    + _SCHEMA
    + """
INSERT OR IGNORE INTO series (project, node, instance, field)
    SELECT DISTINCT project, node, instance, field FROM points_by_name;
INSERT INTO points
    SELECT s.id, p.step, p.t, p.total, p.weight, p.buckets
    FROM points_by_name AS p JOIN series AS s USING (project, node, instance, field);
DROP TABLE points_by_name;
"""
)
"""A file of the earlier layout (a point keyed by its series' names) is moved over whole."""


@dataclass(slots=True)
class Sample:
    """One reading: ``total``/``weight`` as in the module docstring; ``buckets``: the
    increase of each latency bucket (non-cumulative), for a histogram field."""

    project: str
    node: str
    field: str
    total: float
    weight: float
    instance: str = ""
    buckets: list[float] | None = None


@dataclass(slots=True)
class Point:
    t: int
    total: float
    weight: float
    buckets: list[float] | None = field(default=None)

    def add(self, total: float, weight: float, buckets: Sequence[float] | None) -> None:
        self.total += total
        self.weight += weight
        if buckets is not None:
            mine = self.buckets or [0.0] * len(buckets)
            self.buckets = [a + b for a, b in zip(mine, buckets, strict=True)]


class SeriesStore:
    def __init__(self, path: Path, *, retention_s: Sequence[float], max_series: int) -> None:
        """``retention_s``: how long points of each tier (5 s, 1 min, 10 min) are kept;
        ``max_series``: (project, node, instance, field) series kept at most; samples of
        more are dropped (logged once)."""
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=5.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        if self._layout() != "current":  # a reader of a current file takes no write lock
            self._db.execute("BEGIN IMMEDIATE")  # another process may be opening it too
            script = _UPGRADE if self._layout() == "by name" else _SCHEMA
            for statement in script.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute("COMMIT")
        coarser = (*TIER_STEPS_S[1:], 0)  # a tier answers its coarser one's open point
        self._retention = {
            step: max(keep_s, float(up))
            for step, keep_s, up in zip(TIER_STEPS_S, retention_s, coarser, strict=True)
        }
        self._max_series = max_series
        self._open: dict[tuple[int, int], Point] = {}
        """By (series, step): the point each tier has open."""
        self._ids: dict[tuple[str, str, str, str], int] | None = None
        """The series written (project, node, instance, field) and their numbers; read
        when the first sample comes (a store opened to read never needs them)."""
        self._full_logged = False

    def _layout(self) -> str:
        """The file's layout: "current", "by name" (the earlier one) or "none" (new)."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(points)")}
        if "series" in columns:
            return "current"
        return "by name" if "project" in columns else "none"

    def write(self, samples: Sequence[Sample], now: float) -> None:
        """Add ``samples`` taken at ``now`` (seconds) to every tier, then drop old points."""
        rows: list[tuple[object, ...]] = []
        with self._db:
            for sample in samples:
                series = self._series(sample)
                if series is None:
                    continue
                for step in TIER_STEPS_S:
                    self._accumulate(series, sample, step, int(now // step * step), rows)
            self._db.executemany(_WRITE, rows)
            for step, keep_s in self._retention.items():
                self._db.execute(
                    "DELETE FROM points WHERE step = ? AND t < ?", (step, int(now - keep_s))
                )

    def _series(self, sample: Sample) -> int | None:
        """The number of the sample's series (numbered now if new); None when the store
        holds ``max_series`` already."""
        ids = self._ids
        if ids is None:  # the series whose points all expired are forgotten first
            self._db.execute(
                "DELETE FROM series WHERE NOT EXISTS"
                " (SELECT 1 FROM points WHERE points.series = series.id)"
            )
            ids = self._ids = {
                (project, node, instance, field): series
                for series, project, node, instance, field in self._db.execute(
                    "SELECT id, project, node, instance, field FROM series"
                )
            }
        key = (sample.project, sample.node, sample.instance, sample.field)
        series = ids.get(key)
        if series is not None:
            return series
        if len(ids) >= self._max_series:
            if not self._full_logged:
                log.warning("series store full; new series dropped", max_series=self._max_series)
                self._full_logged = True
            return None
        cursor = self._db.execute(
            "INSERT INTO series (project, node, instance, field) VALUES (?, ?, ?, ?)", key
        )
        series = ids[key] = int(cursor.lastrowid or 0)
        return series

    def _accumulate(
        self, series: int, sample: Sample, step: int, t: int, rows: list[tuple[object, ...]]
    ) -> None:
        """Add the sample to its open point of tier ``step``; append the rows due: the
        point itself in the finest tier, a coarser one when this sample closed it."""
        key = (series, step)
        point = self._open.get(key)
        if point is None:
            point = self._open[key] = self._reopened(series, step, t)
        elif point.t != t:
            if step != _FINEST:
                rows.append(_row(key, point))
            point = self._open[key] = Point(t, 0.0, 0.0)
        point.add(sample.total, sample.weight, sample.buckets)
        if step == _FINEST:
            rows.append(_row(key, point))

    def close(self) -> None:
        """Write the open points of the coarser tiers (a store opened again takes them
        up), then close the file."""
        rows = [_row(key, point) for key, point in self._open.items() if key[1] != _FINEST]
        if rows:  # a store opened to read has none
            with self._db:
                self._db.executemany(_WRITE, rows)
        self._db.close()

    def _reopened(self, series: int, step: int, t: int) -> Point:
        """The point of ``series`` in tier ``step`` at ``t`` as the file holds it (empty if
        none): a store opened again, after a restart, adds to the point it had open instead
        of replacing it. A coarse point's row written at ``close`` is taken back (reads
        answer open points from finer ones); one that a crash left unwritten is added up
        from the finer tier's points."""
        where = "WHERE series = ? AND step = ? AND t = ?"
        row = self._db.execute(
            f"SELECT total, weight, buckets FROM points {where}", (series, step, t)
        ).fetchone()
        if row is not None:
            total, weight, buckets = row
            if step != _FINEST:
                self._db.execute(f"DELETE FROM points {where}", (series, step, t))
            return Point(t, total, weight, json.loads(buckets) if buckets else None)
        point = Point(t, 0.0, 0.0)
        if step != _FINEST:
            for _, r_t, total, weight, buckets in self._rows([series], _finer(step), since=t):
                if r_t < t + step:
                    point.add(total, weight, json.loads(buckets) if buckets else None)
        return point

    def _rows(
        self, series: list[int], tier: int, *, since: int
    ) -> list[tuple[int, int, float, float, str | None]]:
        """(series, t, total, weight, buckets) of ``tier`` from ``since`` on, the open
        points (not written yet) answered by the finer tier's, recursively."""
        if not series:
            return []
        marks = ", ".join("?" * len(series))
        rows: list[tuple[int, int, float, float, str | None]] = self._db.execute(
            "SELECT series, t, total, weight, buckets FROM points"
            f" WHERE series IN ({marks}) AND step = ? AND t >= ? ORDER BY series, t",
            (*series, tier, since),
        ).fetchall()
        if tier == _FINEST:
            return rows
        written_to: dict[int, int] = {}
        for number, t, *_ in rows:
            written_to[number] = t + tier  # in order: the end of its last point
        start = min(written_to.values(), default=since)
        rows += [
            row
            for row in self._rows(series, _finer(tier), since=start)
            if row[1] >= written_to.get(row[0], since)
        ]
        return rows

    def read(
        self, project: str, node: str, field: str, *, since: float, step: int, now: float
    ) -> dict[str, list[Point]]:
        """Points of ``field`` from ``since`` on, by instance ("" for the node's own), in
        ``step`` seconds each: from the coarsest tier no coarser than ``step`` that still
        holds ``since`` (else the finest that does, else the coarsest), added up into points
        of ``step``."""
        tier = self._tier(since, step, now)
        step = self.step_for(since, step, now)
        instances = dict(
            self._db.execute(
                "SELECT id, instance FROM series WHERE project = ? AND node = ? AND field = ?",
                (project, node, field),
            ).fetchall()
        )
        rows = self._rows(list(instances), tier, since=int(since // tier * tier))
        series: dict[str, dict[int, Point]] = {}
        for number, t, total, weight, buckets in sorted(rows, key=lambda r: (r[0], r[1])):
            start = t // step * step
            points = series.setdefault(instances[number], {})
            point = points.setdefault(start, Point(start, 0.0, 0.0))
            point.add(total, weight, json.loads(buckets) if buckets else None)
        return {inst: list(points.values()) for inst, points in series.items()}

    def step_for(self, since: float, step: int, now: float) -> int:
        """The step ``read`` answers in: ``step`` rounded down to its tier's (at least it)."""
        tier = self._tier(since, step, now)
        return max(step, tier) // tier * tier

    def _tier(self, since: float, step: int, now: float) -> int:
        covering = [s for s in TIER_STEPS_S if now - since <= self._retention[s]]
        fitting = [s for s in covering if s <= step]
        return max(fitting) if fitting else min(covering, default=TIER_STEPS_S[-1])

    def size_bytes(self) -> int:
        (pages,) = self._db.execute("PRAGMA page_count").fetchone()
        (page,) = self._db.execute("PRAGMA page_size").fetchone()
        return int(pages) * int(page)


def _finer(tier: int) -> int:
    """The tier below ``tier`` (which is not the finest)."""
    return TIER_STEPS_S[TIER_STEPS_S.index(tier) - 1]


_WRITE: Final = "INSERT OR REPLACE INTO points VALUES (?, ?, ?, ?, ?, ?)"


def _row(key: tuple[int, int], point: Point) -> tuple[object, ...]:
    buckets = json.dumps(point.buckets) if point.buckets is not None else None
    return (*key, point.t, point.total, point.weight, buckets)


def quantile(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float | None:
    """The ``q`` quantile of a histogram (``counts`` per bucket, non-cumulative, the last
    one above ``bounds[-1]``), interpolated within its bucket as Prometheus'
    histogram_quantile does; None without observations."""
    total = sum(counts)
    if total <= 0:
        return None
    rank, seen, lower = q * total, 0.0, 0.0
    for bound, count in zip((*bounds, math.inf), counts, strict=True):
        if count > 0 and seen + count >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - seen) / count
        seen += count
        lower = bound
    return lower
