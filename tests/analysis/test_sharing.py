"""Judgements shared with a forked helper: the same results, in order, whatever process made them."""

from __future__ import annotations

import multiprocessing
import os

import pytest
from chatterbox_codemod.analysis import judge_all

PARENT = os.getpid()


def _both_processes_judge():
    """A judge that holds each process at its first item until the other has taken one, so that both take
    part whatever the machine's load (the helper, started first, could otherwise take every item before this
    process takes its first)."""
    context = multiprocessing.get_context("fork")
    parent_started, helper_started = context.Event(), context.Event()

    def judge(item: int) -> tuple[int, int]:
        mine, other = (parent_started, helper_started) if os.getpid() == PARENT else (helper_started, parent_started)
        if not mine.is_set():
            mine.set()
            assert other.wait(60), "the other process judged nothing"
        return item * item, os.getpid()

    return judge


def test_results_come_back_in_order_from_both_processes():
    results = judge_all(_both_processes_judge(), list(range(40)), jobs=2)
    assert [square for square, _ in results] == [i * i for i in range(40)]
    assert len({pid for _, pid in results}) == 2


def test_one_job_or_few_items_stay_in_this_process():
    assert judge_all(lambda item: (item, os.getpid()), list(range(40)), jobs=1) == [(i, PARENT) for i in range(40)]
    assert judge_all(lambda item: (item, os.getpid()), [1, 2], jobs=2) == [(1, PARENT), (2, PARENT)]


def test_an_error_is_raised_here_whichever_process_met_it():
    """An item that raises in the helper is judged again here (judgements are deterministic), so the error
    surfaces as it would in one process."""
    judge = _both_processes_judge()

    def failing(item: int):
        if item in (5, 6, 30, 31):
            raise ValueError(f"item {item}")
        return judge(item)

    with pytest.raises(ValueError, match="item"):
        judge_all(failing, list(range(40)), jobs=2)


def test_a_helper_that_dies_costs_time_not_results():
    judge = _both_processes_judge()

    def dying(item: int):
        result = judge(item)
        if os.getpid() != PARENT:
            os._exit(3)  # killed mid-way: nothing is sent back
        return result

    results = judge_all(dying, list(range(40)), jobs=2)
    assert results == [(i * i, PARENT) for i in range(40)]
