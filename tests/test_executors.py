"""The executor protocol's reference (omnimem.executors.InProcessExecutor): order, one factory call per
worker, a dead worker named, arguments checked. The Ray adapter runs the same jobs in tests/test_ray_jobs.py."""

from __future__ import annotations

import functools
import os
import signal
import threading
import time

import pytest

from omnimem.errors import ConfigError
from omnimem.executors import Executor, InProcessExecutor, WorkerLost


def _square_worker(calls: list | None = None):
    """A worker's function: records who built it (the factory runs once per worker)."""
    if calls is not None:
        calls.append(threading.get_ident())
    return lambda batch: [x * x for x in batch]


def _pid_worker():
    return lambda batch: os.getpid()


def _dies_on(victim: int):
    def run(batch):
        if victim in batch:
            os.kill(os.getpid(), signal.SIGKILL)
        return batch

    return run


@pytest.mark.parametrize("workers,pool", [(1, "process"), (3, "thread")])
def test_results_in_submission_order_and_one_factory_call_per_worker(workers, pool):
    calls: list = []
    executor = InProcessExecutor(workers, pool=pool)
    assert isinstance(executor, Executor)
    batches = ([k, k + 1] for k in range(0, 40, 2))  # a generator: read lazily
    out = list(executor.map_batches(functools.partial(_square_worker, calls), batches))
    assert out == [[k * k, (k + 1) ** 2] for k in range(0, 40, 2)]
    assert 1 <= len(calls) <= workers and len(set(calls)) == len(calls)


def test_process_pool_runs_batches_in_other_processes():
    with InProcessExecutor(2) as executor:
        pids = set(executor.map_batches(_pid_worker, [[k] for k in range(6)]))
    assert pids and os.getpid() not in pids


def test_a_dead_worker_process_is_named():
    results = []
    with pytest.raises(WorkerLost) as lost:
        for r in InProcessExecutor(2).map_batches(functools.partial(_dies_on, 3), [[k] for k in range(6)]):
            results.append(r)
    assert lost.value.index <= 3 and results == [[k] for k in range(lost.value.index)]


def _dies_late_on(victim: int):
    def run(batch):
        if victim in batch:
            time.sleep(1)  # the batches before it have reported by then
            os.kill(os.getpid(), signal.SIGKILL)
        return batch

    return run


def _slow_batches():
    yield [0]
    yield [1]  # the batch that kills its worker
    time.sleep(4)  # the pool is broken before the next batch is read
    yield from ([k] for k in range(2, 6))


def test_a_worker_dying_between_submissions_is_named_too():
    results = []
    with pytest.raises(WorkerLost) as lost:
        for r in InProcessExecutor(2).map_batches(functools.partial(_dies_late_on, 1), _slow_batches()):
            results.append(r)
    assert lost.value.index == 1 and results == [[0]]


def test_a_batch_error_propagates_as_raised():
    def bad():
        def run(batch):
            raise ConfigError(f"bad batch {batch}")

        return run

    with pytest.raises(ConfigError, match="bad batch"):
        list(InProcessExecutor().map_batches(bad, [[1]]))


@pytest.mark.parametrize("workers,pool", [(0, "process"), (True, "process"), (2, "fork")])
def test_arguments_are_checked(workers, pool):
    with pytest.raises(ConfigError):
        InProcessExecutor(workers, pool=pool)
