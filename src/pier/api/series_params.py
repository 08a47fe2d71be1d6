"""The query parameters of every series route (a node's, an alias's)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

SinceParam = Annotated[
    float, Query(gt=0, le=7 * 86400, description="How many seconds back from now.")
]
StepParam = Annotated[
    int, Query(ge=5, le=86400, description="Seconds per point (rounded to 5 s, 1 min, 10 min).")
]
