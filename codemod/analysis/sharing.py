"""Judging independent candidates on two processes: this one and a forked copy of it.

An analysis judges each candidate region against facts computed once for the
whole project (the index, the grad states, training code). Judgements do not
depend on each other: the value flow's replayed walks re-ask every question
and count their frames as walks do, so a candidate's verdict and reason are the
same whichever candidates were judged before it, and in which process. A copy
of the process made by `fork` after those facts are computed shares them
without pickling anything, and the second core, idle while the analysis runs,
takes half of the candidates. (inference-mode's grad states are propagated when
a judgement first needs them, which may be after the fork, in each process: a
site that a hazard no fix can make safe settles is judged without them.)

The two processes take the next candidate from a shared counter, so a few
costly candidates do not leave one of them idle. The helper sends its results
back (they must pickle) when it runs out of candidates; whatever it did not
send back (it failed, was killed, or raised) is judged here, so an error
surfaces exactly as it would in one process.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Sequence
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# Fewer candidates than this are judged here: a fork costs a few milliseconds, and more with a large heap.
MIN_SHARED = 4


def judge_all(judge: Callable[[Item], Result], items: Sequence[Item], jobs: int) -> list[Result]:
    """`judge(item)` for every item, in order; shared with a forked helper unless `jobs` is 1."""
    workers = jobs or os.cpu_count() or 1
    if workers < 2 or len(items) < MIN_SHARED or "fork" not in multiprocessing.get_all_start_methods():
        return [judge(item) for item in items]
    context = multiprocessing.get_context("fork")
    counter = context.Value("i", 0)
    receiving, sending = context.Pipe(duplex=False)

    def take() -> int:
        with counter.get_lock():
            position = counter.value
            counter.value += 1
        return position

    def helper() -> None:
        judged: dict[int, Result] = {}
        try:
            while (position := take()) < len(items):
                judged[position] = judge(items[position])
        except BaseException:  # the parent judges what is missing, and raises there as one process would
            pass
        try:
            sending.send(judged)
        finally:
            os._exit(0)  # no atexit handlers, no heap teardown: this is a copy of the parent

    process = context.Process(target=helper, daemon=True)
    process.start()
    sending.close()
    results: dict[int, Result] = {}
    try:
        while (position := take()) < len(items):
            results[position] = judge(items[position])
    finally:
        with contextlib.suppress(EOFError, OSError):  # the helper ended without sending: judged below
            results.update(receiving.recv())
        receiving.close()
        process.join()
    return [results[position] if position in results else judge(items[position]) for position in range(len(items))]
