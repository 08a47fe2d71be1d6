"""Comparing a mirror's V2 outputs with the primary's, as pure functions."""

from __future__ import annotations

import orjson
import pytest

from pier.gateway.compare import Comparison, compare_answers


def _answer(*outputs: tuple[str, object]) -> bytes:
    body = orjson.dumps({"outputs": [{"name": n, "data": d} for n, d in outputs]})
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


def test_outputs_within_the_tolerance_are_equal() -> None:
    result = compare_answers(_answer(("y", [1.0, 2.0])), _answer(("y", [1.0, 2.0000001])), 1e-6)
    assert result is not None and result.is_equal
    assert result.max_abs_difference == pytest.approx(1e-7)


def test_different_outputs_report_the_largest_difference() -> None:
    primary = _answer(("y", [[1.0, 2.0], [3.0, 4.0]]), ("label", ["cat"]))
    mirrored = _answer(("y", [[1.5, 2.0], [3.0, 1.0]]), ("label", ["cat"]))
    result = compare_answers(primary, mirrored, 1e-6)
    assert result is not None and not result.is_equal
    assert result.max_abs_difference == 3.0


@pytest.mark.parametrize(
    "mirrored",
    [_answer(("z", [1.0])), _answer(("y", [1.0, 2.0])), _answer(("y", ["1.0"]))],
)
def test_other_names_lengths_or_types_differ(mirrored: bytes) -> None:
    result = compare_answers(_answer(("y", [1.0])), mirrored, 1e-6)
    assert result is not None and not result.is_equal


@pytest.mark.parametrize(
    "other", [b"HTTP/1.1 200 OK\r\n\r\nnot json", b"HTTP/1.1 200 OK\r\n\r\n{}", b"no head"]
)
def test_answers_without_v2_outputs_are_not_compared(other: bytes) -> None:
    assert compare_answers(_answer(("y", [1.0])), other, 1e-6) is None


def test_equal_answers_are_equal_and_equal_non_v2_answers_are_not_compared() -> None:
    answer = _answer(("y", [[1.0, 2.0], [3.0, 4.0]]), ("label", ["cat"]))
    assert compare_answers(answer, answer, 0.0) == Comparison(True, 0.0)
    other = b"HTTP/1.1 200 OK\r\n\r\n{}"
    assert compare_answers(other, other, 1e-6) is None


def test_nested_outputs_are_compared_flat() -> None:
    result = compare_answers(_answer(("y", [[1.0], [2.0, [3.0]]])), _answer(("y", [1, 2, 3])), 0.0)
    assert result == Comparison(True, 0.0)


def _chunked(answer: bytes, *sizes: int) -> bytes:
    """``answer``'s body in chunks of ``sizes`` (the rest in one more), as the relay
    re-chunks it."""
    head, _, body = answer.partition(b"\r\n\r\n")
    head = head.replace(b"content-length", b"transfer-encoding: chunked\r\nx-was")
    chunks, at = [], 0
    for size in (*sizes, len(body)):
        if at < len(body):
            chunks.append(b"%x\r\n%s\r\n" % (len(body[at : at + size]), body[at : at + size]))
            at += size
    return head + b"\r\n\r\n" + b"".join(chunks) + b"0\r\n\r\n"


def test_chunked_answers_are_compared_by_their_data() -> None:
    primary = _answer(("y", [1.0, 2.0]))
    assert compare_answers(_chunked(primary, 5), _chunked(primary, 9, 3), 0.0) == Comparison(
        True, 0.0
    )
    result = compare_answers(_chunked(primary, 7), _answer(("y", [1.0, 2.5])), 1e-6)
    assert result == Comparison(False, 0.5)


def test_a_chunked_answer_cut_short_is_not_compared() -> None:
    whole = _chunked(_answer(("y", [1.0, 2.0])), 5)
    assert compare_answers(whole, whole[:-5], 0.0) is None
    assert compare_answers(whole, whole.replace(b"\r\n0\r\n", b"\r\nzz\r\n"), 0.0) is None
