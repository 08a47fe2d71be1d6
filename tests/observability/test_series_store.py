"""The series store with a simulated clock: tiers, downsampling, quantiles, retention."""

from __future__ import annotations

from pathlib import Path

import pytest

from pier.domain.latency import LATENCY_BUCKETS_S
from pier.observability.series import Sample, SeriesStore, quantile

DAY = 86400
RETENTION = (3600.0, 86400.0, 7 * 86400.0)
T0 = 1_700_000_000 // 600 * 600


def store(tmp_path: Path, *, max_series: int = 1000) -> SeriesStore:
    return SeriesStore(tmp_path / "series.db", retention_s=RETENTION, max_series=max_series)


def write_requests(s: SeriesStore, start: int, seconds: int, per_sample: float) -> None:
    for t in range(start, start + seconds, 5):
        s.write([Sample("p", "n", "requests", per_sample, 5.0)], now=t)


def test_a_minute_point_adds_up_its_twelve_5s_samples(tmp_path: Path) -> None:
    s = store(tmp_path)
    write_requests(s, T0, 60, per_sample=10.0)
    (fine,) = s.read("p", "n", "requests", since=T0, step=5, now=T0 + 60).values()
    (minute,) = s.read("p", "n", "requests", since=T0, step=60, now=T0 + 60).values()
    assert len(fine) == 12 and all(p.total / p.weight == 2.0 for p in fine)
    assert [(p.t, p.total, p.weight) for p in minute] == [(T0, 120.0, 60.0)]


def test_points_older_than_their_retention_are_gone(tmp_path: Path) -> None:
    s = store(tmp_path)
    write_requests(s, T0, 2 * 3600, per_sample=1.0)
    now = T0 + 2 * 3600
    fine = s.read("p", "n", "requests", since=now - 3600, step=5, now=now)[""]
    assert min(p.t for p in fine) >= now - 3600 - 5
    count = s._db.execute("SELECT COUNT(*) FROM points WHERE step = 5").fetchone()[0]
    assert count <= 3600 // 5 + 1
    minutes = s.read("p", "n", "requests", since=T0, step=60, now=now)[""]
    assert minutes[0].t == T0  # the 1 min tier still holds the first hour


def test_a_range_past_the_fine_retention_is_answered_from_a_coarser_tier(
    tmp_path: Path,
) -> None:
    s = store(tmp_path)
    write_requests(s, T0, 2 * 3600, per_sample=1.0)
    now = T0 + 2 * 3600
    assert s.step_for(now - 2 * 3600, 5, now) == 60
    assert s.step_for(now - 2 * DAY, 5, now) == 600
    assert s.step_for(now - 600, 5, now) == 5


def test_quantiles_of_a_coarse_point_come_from_the_added_buckets(tmp_path: Path) -> None:
    s = store(tmp_path)
    fast = [0.0] * (len(LATENCY_BUCKETS_S) + 1)
    fast[LATENCY_BUCKETS_S.index(0.01)] = 95.0
    slow = [0.0] * (len(LATENCY_BUCKETS_S) + 1)
    slow[LATENCY_BUCKETS_S.index(1.0)] = 5.0
    s.write([Sample("p", "n", "latency", 95.0, 1.0, buckets=fast)], now=T0)
    s.write([Sample("p", "n", "latency", 5.0, 1.0, buckets=slow)], now=T0 + 5)
    (minute,) = s.read("p", "n", "latency", since=T0, step=60, now=T0 + 10)[""]
    assert minute.buckets is not None
    p50 = quantile(0.5, LATENCY_BUCKETS_S, minute.buckets)
    p99 = quantile(0.99, LATENCY_BUCKETS_S, minute.buckets)
    assert p50 is not None and 0.005 < p50 <= 0.01
    assert p99 is not None and 0.5 < p99 <= 1.0


def test_quantile_interpolates_within_its_bucket() -> None:
    assert quantile(0.5, (1.0, 2.0), [0.0, 10.0, 0.0]) == pytest.approx(1.5)
    assert quantile(0.5, (1.0, 2.0), [0.0, 0.0, 0.0]) is None


def test_series_past_max_series_are_dropped(tmp_path: Path) -> None:
    s = store(tmp_path, max_series=2)
    s.write([Sample("p", f"n{i}", "requests", 1.0, 5.0) for i in range(3)], now=T0)
    assert s.read("p", "n2", "requests", since=T0, step=5, now=T0) == {}
    assert s.read("p", "n1", "requests", since=T0, step=5, now=T0) != {}


def test_20_nodes_for_two_hours_keep_an_hour_of_5s_points(tmp_path: Path) -> None:
    """Six fields per node (the sampler's node fields, one a histogram): the 5 s tier
    stays at an hour's points however long sampling goes on."""
    s = store(tmp_path)
    buckets = [1.0] * (len(LATENCY_BUCKETS_S) + 1)
    fields = ("requests", "errors", "in_flight", "instances", "instances_healthy")
    for t in range(T0, T0 + 2 * 3600, 5):
        samples = []
        for i in range(20):
            samples += [Sample("p", f"node-{i}", f, 1.0, 5.0) for f in fields]
            samples.append(Sample("p", f"node-{i}", "latency", 17.0, 1.0, buckets=buckets))
        s.write(samples, now=t)
    steps = dict(s._db.execute("SELECT step, COUNT(*) FROM points GROUP BY step").fetchall())
    assert steps[5] <= 20 * 6 * (3600 // 5 + 1)
    assert steps[60] == 20 * 6 * 119  # the minutes closed; the open one is read from 5 s points
    minutes = s.read("p", "node-3", "requests", since=T0, step=60, now=T0 + 2 * 3600)[""]
    assert len(minutes) == 120 and (minutes[-1].total, minutes[-1].weight) == (12.0, 60.0)


def test_a_coarse_point_is_written_once_when_it_closes(tmp_path: Path) -> None:
    """Each sample writes its 5 s point; a minute's point is written when the next minute
    begins (not once per sample), and reads answer the open one from its 5 s points."""
    s = store(tmp_path)
    changes = s._db.total_changes
    write_requests(s, T0, 55, per_sample=10.0)  # 11 samples, all in the first minute
    assert s._db.total_changes - changes == 1 + 11  # the series numbered, its 5 s points
    (minute,) = s.read("p", "n", "requests", since=T0, step=60, now=T0 + 55)[""]
    (ten,) = s.read("p", "n", "requests", since=T0, step=600, now=T0 + 55)[""]
    assert (minute.total, minute.weight) == (ten.total, ten.weight) == (110.0, 55.0)
    changes = s._db.total_changes
    write_requests(s, T0 + 60, 5, per_sample=10.0)  # the next minute: the first one closes
    assert s._db.total_changes - changes == 2  # a 5 s point, the minute closed
    rows = s._db.execute("SELECT step, t, total FROM points WHERE step > 5").fetchall()
    assert rows == [(60, T0, 110.0)]
    (ten,) = s.read("p", "n", "requests", since=T0, step=600, now=T0 + 65)[""]
    assert (ten.total, ten.weight) == (120.0, 60.0)  # a closed minute and an open one


def test_a_store_not_closed_rebuilds_its_open_points_from_finer_ones(tmp_path: Path) -> None:
    """A control plane killed in the middle of a minute wrote only its 5 s points; the
    store opened again adds up the open minute (and ten minutes) from them."""
    first = store(tmp_path)
    write_requests(first, T0, 30, per_sample=10.0)  # and never closed
    again = store(tmp_path)
    write_requests(again, T0 + 30, 30, per_sample=10.0)
    write_requests(again, T0 + 600, 5, per_sample=10.0)  # both points close
    rows = again._db.execute("SELECT step, t, total, weight FROM points WHERE step > 5")
    assert sorted(rows.fetchall()) == [(60, T0, 120.0, 60.0), (600, T0, 120.0, 60.0)]


def test_each_tier_keeps_its_own_retention_and_adds_up_ten_minutes(tmp_path: Path) -> None:
    """Short retentions (1 min, 10 min, 1 h) over 2 h of 5 s samples: each tier holds
    only its own span, and a 10 min point adds up its 120 samples."""
    s = SeriesStore(tmp_path / "series.db", retention_s=(60.0, 600.0, 3600.0), max_series=10)
    write_requests(s, T0, 2 * 3600, per_sample=1.0)
    now = T0 + 2 * 3600 - 5
    oldest = dict(s._db.execute("SELECT step, MIN(t) FROM points GROUP BY step").fetchall())
    assert oldest == {5: now - 60, 60: T0 + 6600, 600: T0 + 3600}
    tens = s.read("p", "n", "requests", since=now - 3600, step=600, now=now)[""]
    assert [(p.t, p.total, p.weight) for p in tens] == [
        (T0 + 600 * k, 120.0, 600.0) for k in range(6, 12)
    ]


def test_a_store_opened_again_adds_to_the_point_it_had_open(tmp_path: Path) -> None:
    """A restart of the control plane in the middle of a minute (and of 10 minutes) keeps
    what that minute had before it."""
    first = store(tmp_path)
    write_requests(first, T0, 30, per_sample=10.0)
    first.close()
    again = store(tmp_path)
    write_requests(again, T0 + 30, 30, per_sample=10.0)
    (minute,) = again.read("p", "n", "requests", since=T0, step=60, now=T0 + 60)[""]
    (ten,) = again.read("p", "n", "requests", since=T0, step=600, now=T0 + 60)[""]
    assert (minute.total, minute.weight) == (120.0, 60.0)
    assert (ten.total, ten.weight) == (120.0, 60.0)


def test_the_retention_delete_finds_old_points_by_index(tmp_path: Path) -> None:
    """Every write drops old points: by an index, not a scan of all the points."""
    s = store(tmp_path)
    plan = s._db.execute(
        "EXPLAIN QUERY PLAN DELETE FROM points WHERE step = ? AND t < ?", (5, T0)
    ).fetchall()
    assert any("USING" in row[-1] and "points_by_age" in row[-1] for row in plan), plan


def test_a_file_of_the_earlier_layout_keeps_its_points(tmp_path: Path) -> None:
    """Points keyed by their series' names (the earlier layout) are moved to numbered
    series when the file is opened, and sampling goes on from them."""
    import sqlite3

    path = tmp_path / "series.db"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE points (project TEXT NOT NULL, node TEXT NOT NULL,"
            " instance TEXT NOT NULL, field TEXT NOT NULL, step INTEGER NOT NULL,"
            " t INTEGER NOT NULL, total REAL NOT NULL, weight REAL NOT NULL, buckets TEXT,"
            " PRIMARY KEY (project, node, field, step, instance, t)) WITHOUT ROWID;"
            " CREATE INDEX points_by_age ON points (step, t);"
        )
        db.executemany(
            "INSERT INTO points VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [("p", "n", "", "requests", 5, T0 + 5 * k, 10.0, 5.0, None) for k in range(6)],
        )
    s = SeriesStore(path, retention_s=RETENTION, max_series=1000)
    write_requests(s, T0 + 30, 30, per_sample=10.0)
    (fine,) = s.read("p", "n", "requests", since=T0, step=5, now=T0 + 60).values()
    assert [(p.t, p.total) for p in fine] == [(T0 + 5 * k, 10.0) for k in range(12)]
    (minute,) = s.read("p", "n", "requests", since=T0, step=60, now=T0 + 60).values()
    assert (minute[0].total, minute[0].weight) == (120.0, 60.0)
    s.close()
    again = SeriesStore(path, retention_s=RETENTION, max_series=1000)  # opened as it is now
    (minute,) = again.read("p", "n", "requests", since=T0, step=60, now=T0 + 60).values()
    assert (minute[0].total, minute[0].weight) == (120.0, 60.0)


def test_a_store_opened_to_read_takes_no_write_lock(tmp_path: Path) -> None:
    """A chart's read opens the file while the sampler may be writing: opening and closing
    a current file waits for no lock (a held write lock would stop it for the busy
    timeout, then fail)."""
    import sqlite3

    s = store(tmp_path)
    write_requests(s, T0, 10, per_sample=10.0)
    s.close()
    writer = sqlite3.connect(tmp_path / "series.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # the sampler in the middle of a write
    try:
        reader = store(tmp_path)
        (fine,) = reader.read("p", "n", "requests", since=T0, step=5, now=T0 + 10).values()
        reader.close()
        assert [p.total for p in fine] == [10.0, 10.0]
    finally:
        writer.execute("ROLLBACK")
        writer.close()
