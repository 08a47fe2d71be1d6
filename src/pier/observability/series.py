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
ALIAS_FIELD: Final = "alias."
"""Prefix of an alias's fields: its series are kept under the alias's name, one per
node behind it (the ``instance`` column holds the node's name)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    project TEXT NOT NULL, node TEXT NOT NULL, instance TEXT NOT NULL, field TEXT NOT NULL,
    step INTEGER NOT NULL, t INTEGER NOT NULL,
    total REAL NOT NULL, weight REAL NOT NULL, buckets TEXT,
    PRIMARY KEY (project, node, field, step, instance, t)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS points_by_age ON points (step, t);
"""
"""``points_by_age``: the retention delete of every write finds old points by tier and
time without scanning the table."""


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
        self._db.executescript(_SCHEMA)
        coarser = (*TIER_STEPS_S[1:], 0)  # a tier answers its coarser one's open point
        self._retention = {
            step: max(keep_s, float(up))
            for step, keep_s, up in zip(TIER_STEPS_S, retention_s, coarser, strict=True)
        }
        self._max_series = max_series
        self._open: dict[tuple[str, str, str, str, int], Point] = {}
        self._known: set[tuple[str, str, str, str]] | None = None
        self._full_logged = False

    def write(self, samples: Sequence[Sample], now: float) -> None:
        """Add ``samples`` taken at ``now`` (seconds) to every tier, then drop old points."""
        rows: list[tuple[object, ...]] = []
        for sample in samples:
            if not self._admit(sample):
                continue
            for step in TIER_STEPS_S:
                self._accumulate(sample, step, int(now // step * step), rows)
        with self._db:
            self._db.executemany(_WRITE, rows)
            for step, keep_s in self._retention.items():
                self._db.execute(
                    "DELETE FROM points WHERE step = ? AND t < ?", (step, int(now - keep_s))
                )

    def _admit(self, sample: Sample) -> bool:
        if self._known is None:
            self._known = set(
                self._db.execute("SELECT DISTINCT project, node, instance, field FROM points")
            )
        key = (sample.project, sample.node, sample.instance, sample.field)
        if key in self._known:
            return True
        if len(self._known) >= self._max_series:
            if not self._full_logged:
                log.warning("series store full; new series dropped", max_series=self._max_series)
                self._full_logged = True
            return False
        self._known.add(key)
        return True

    def _accumulate(
        self, sample: Sample, step: int, t: int, rows: list[tuple[object, ...]]
    ) -> None:
        """Add the sample to its open point of tier ``step``; append the rows due: the
        point itself in the finest tier, a coarser one when this sample closed it."""
        key = (sample.project, sample.node, sample.instance, sample.field, step)
        point = self._open.get(key)
        if point is None:
            point = self._open[key] = self._reopened(key, t)
        elif point.t != t:
            if step != TIER_STEPS_S[0]:
                rows.append(_row(key, point))
            point = self._open[key] = Point(t, 0.0, 0.0)
        point.add(sample.total, sample.weight, sample.buckets)
        if step == TIER_STEPS_S[0]:
            rows.append(_row(key, point))

    def close(self) -> None:
        """Write the open points of the coarser tiers (a store opened again takes them
        up), then close the file."""
        rows = [_row(key, point) for key, point in self._open.items() if key[4] != TIER_STEPS_S[0]]
        with self._db:
            self._db.executemany(_WRITE, rows)
        self._db.close()

    def _reopened(self, key: tuple[str, str, str, str, int], t: int) -> Point:
        """The point of ``key`` at ``t`` as the file holds it (empty if none): a store
        opened again, after a restart, adds to the point it had open instead of
        replacing it. A coarse point's row written at ``close`` is taken back (reads
        answer open points from finer ones); one that a crash left unwritten is added up
        from the finer tier's points."""
        project, node, instance, field, step = key
        row = self._db.execute(
            "SELECT total, weight, buckets FROM points WHERE project = ? AND node = ? AND"
            " instance = ? AND field = ? AND step = ? AND t = ?",
            (*key, t),
        ).fetchone()
        if row is not None:
            total, weight, buckets = row
            if step != TIER_STEPS_S[0]:
                self._db.execute(
                    "DELETE FROM points WHERE project = ? AND node = ? AND instance = ? AND"
                    " field = ? AND step = ? AND t = ?",
                    (*key, t),
                )
            return Point(t, total, weight, json.loads(buckets) if buckets else None)
        point = Point(t, 0.0, 0.0)
        if step != TIER_STEPS_S[0]:
            finer = TIER_STEPS_S[TIER_STEPS_S.index(step) - 1]
            for r_instance, r_t, total, weight, buckets in self._rows(
                project, node, field, finer, since=t
            ):
                if r_instance == instance and r_t < t + step:
                    point.add(total, weight, json.loads(buckets) if buckets else None)
        return point

    def _rows(
        self, project: str, node: str, field: str, tier: int, *, since: int
    ) -> list[tuple[str, int, float, float, str | None]]:
        """(instance, t, total, weight, buckets) of ``tier`` from ``since`` on, the open
        points (not written yet) answered by the finer tier's, recursively."""
        rows: list[tuple[str, int, float, float, str | None]] = self._db.execute(
            "SELECT instance, t, total, weight, buckets FROM points WHERE project = ? AND"
            " node = ? AND field = ? AND step = ? AND t >= ? ORDER BY instance, t",
            (project, node, field, tier, since),
        ).fetchall()
        if tier == TIER_STEPS_S[0]:
            return rows
        written_to: dict[str, int] = {}
        for instance, t, *_ in rows:
            written_to[instance] = t + tier  # in order: the end of its last point
        start = min(written_to.values(), default=since)
        finer = TIER_STEPS_S[TIER_STEPS_S.index(tier) - 1]
        rows += [
            row
            for row in self._rows(project, node, field, finer, since=start)
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
        rows = self._rows(project, node, field, tier, since=int(since // tier * tier))
        series: dict[str, dict[int, Point]] = {}
        for instance, t, total, weight, buckets in sorted(rows, key=lambda r: (r[0], r[1])):
            start = t // step * step
            points = series.setdefault(instance, {})
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


_WRITE: Final = "INSERT OR REPLACE INTO points VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"


def _row(key: tuple[str, str, str, str, int], point: Point) -> tuple[object, ...]:
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
