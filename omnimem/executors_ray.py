"""The Ray executor: a job's batches on the actors of a Ray cluster (``pip install 'omnimem[ray]'``).

One actor per worker runs ``make_fn`` once when it starts (models load once per worker) and then one
batch per task; the driver hands an actor its next batch as soon as it returns one (one batch per
actor at a time, so the batch a dead actor was running is known exactly) and yields results in
submission order (:class:`omnimem.executors.Executor`). Workers never open the
memory: batches go out as values, results come back as values, the driver writes them.

Failures: an exception raised for a batch is the batch's own (bad input): it propagates at once,
unwrapped, never retried. An actor that dies (its process killed, out of memory, a native crash)
is a system failure: it is replaced by a fresh actor and its batch resubmitted, up to ``max_retries``
times per batch; past that, :class:`~omnimem.executors.WorkerLost`, raised when the output reaches
that batch (every earlier result has been yielded).

``address``: None starts a local cluster (or uses the one this process already started); ``"auto"``
joins the cluster of this machine (``ray start --head``); ``"ray://host:10001"`` or ``"host:6379"``
joins that one. Every node needs omnimem installed (or a ``runtime_env`` that installs it) and the
files a job reads at the same path.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from omnimem.errors import ConfigError, missing_extra
from omnimem.executors import MakeFn, WorkerLost

__all__ = ["RayExecutor"]

log = logging.getLogger(__name__)


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise missing_extra("ray", "ray") from e
    return ray


class _Worker:
    """The actor: one worker's function, built once. An error building it is raised by every batch
    (an application error, not a dead actor that would be restarted in vain)."""

    def __init__(self, make_fn: MakeFn) -> None:
        self.error: BaseException | None = None
        try:
            self.fn = make_fn()
        except Exception as e:  # noqa: BLE001 - reported with the first batch
            self.error = e

    def run(self, batch: Any) -> Any:
        if self.error is not None:
            raise self.error
        return self.fn(batch)

    def pid(self) -> int:
        return os.getpid()


@dataclass
class _Task:
    index: int  # the batch's position in the input
    batch: Any  # the batch, kept to resubmit it
    slot: int  # which worker slot runs it
    actor: Any = None  # the actor it was sent to
    ref: Any = None  # the result's ObjectRef
    tries: int = 0  # resubmissions after a dead actor


class RayExecutor:
    """Batches on Ray actors; a context manager (``close`` shuts down a cluster it started)."""

    def __init__(
        self, address: str | None = None, *, num_workers: int | None = None, cpus_per_worker: float = 1.0,
        max_retries: int = 2, runtime_env: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        if num_workers is not None and (isinstance(num_workers, bool) or num_workers < 1):
            raise ConfigError(f"num_workers must be >= 1 or None (the cluster's CPUs), got {num_workers!r}")
        if cpus_per_worker <= 0 or max_retries < 0:
            raise ConfigError(f"cpus_per_worker must be > 0 and max_retries >= 0, got {cpus_per_worker}, {max_retries}")
        _ray()  # fail now, naming the extra, not in the middle of a job
        self.address = address or None  # None: a local cluster; "auto", "ray://host:port" or "host:port"
        self.num_workers = num_workers  # actors per job (None: the cluster's CPUs / cpus_per_worker)
        self.cpus_per_worker = cpus_per_worker  # CPUs each actor reserves (Ray sets its OMP threads to it)
        self.max_retries = max_retries  # resubmissions of a batch whose actor died (system failures only)
        self.runtime_env = runtime_env  # Ray runtime_env when this executor connects (e.g. pip packages)
        self.actors: list[Any] = []  # the running job's actor handles (tests kill them)
        self._started = False  # whether close() shuts the cluster down

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r}, num_workers={self.num_workers})"

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def workers(self) -> int:
        self._connect()
        if self.num_workers is not None:
            return self.num_workers
        cpus = _ray().cluster_resources().get("CPU", 1)
        return max(1, int(cpus // self.cpus_per_worker))

    def _connect(self) -> None:
        ray = _ray()
        if ray.is_initialized():
            return
        options: dict[str, Any] = {"logging_level": logging.WARNING, "runtime_env": self.runtime_env}
        if self.address is None:
            cpus = max(os.cpu_count() or 1, int((self.num_workers or 1) * self.cpus_per_worker))
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, **options)  # never a stale `ray start`
            self._started = True
        else:
            ray.init(address=self.address, **options)
        log.info("ray: connected to %s", ray.get_runtime_context().gcs_address)

    def close(self) -> None:
        """Shut down the local cluster this executor started (a joined one stays up)."""
        if self._started:
            _ray().shutdown()
            self._started = False

    def map_batches(self, make_fn: MakeFn, batches: Iterable[Any]) -> Iterator[Any]:
        ray = _ray()
        n = self.workers
        actor_class = ray.remote(num_cpus=self.cpus_per_worker, max_restarts=0, max_task_retries=0)(_Worker)
        factory = ray.put(make_fn)  # shipped once, deserialized by each actor
        self.actors = [actor_class.remote(factory) for _ in range(n)]
        idle = list(range(n))  # worker slots without a batch
        running: dict[Any, _Task] = {}  # ObjectRef -> task
        done: dict[int, Any] = {}  # results that came back before an earlier one (or a _Lost)
        queue = enumerate(batches)
        exhausted, next_out = False, 0

        def submit(task: _Task) -> None:
            task.actor = self.actors[task.slot]
            task.ref = task.actor.run.remote(task.batch)
            running[task.ref] = task

        try:
            while True:
                while not exhausted and idle and len(running) + len(done) < 2 * n:  # a bounded window
                    item = next(queue, None)
                    if item is None:
                        exhausted = True
                        break
                    submit(_Task(item[0], item[1], slot=idle.pop(0)))
                if next_out in done:
                    result = done.pop(next_out)
                    if isinstance(result, _Lost):
                        raise result.error
                    yield result
                    next_out += 1
                    continue
                if not running:
                    return
                (ref,), _ = ray.wait(list(running), num_returns=1)
                task = running.pop(ref)
                try:
                    done[task.index] = ray.get(ref)
                except ray.exceptions.RayTaskError as e:  # the batch's own error: propagate it as raised
                    cause = getattr(e, "cause", None)
                    raise (cause if isinstance(cause, BaseException) else e) from None
                except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as e:
                    if self._recover(task, e, done, actor_class, factory):
                        submit(task)
                        continue
                idle.append(task.slot)
        finally:
            for actor in self.actors:
                ray.kill(actor)
            self.actors = []

    def _recover(self, task: _Task, error: Exception, done: dict[int, Any], actor_class: Any, factory: Any) -> bool:
        """The actor running ``task`` died: start a fresh one in its slot. Returns whether to resubmit
        the batch; past ``max_retries`` it is given up (``WorkerLost`` once the output reaches it)."""
        ray = _ray()
        task.tries += 1
        why = type(error).__name__
        log.warning("ray: worker %d died on batch %d (%s); starting a fresh one", task.slot, task.index, why)
        ray.kill(task.actor)
        self.actors[task.slot] = actor_class.remote(factory)
        if task.tries <= self.max_retries:
            return True
        message = (
            f"the worker running batch {task.index} died {task.tries} time(s) ({why}); a batch that kills its"
            f" worker every time (out of memory, a native crash) is given up after max_retries={self.max_retries}"
        )
        done[task.index] = _Lost(WorkerLost(message, index=task.index))
        return False


@dataclass(frozen=True)
class _Lost:
    error: WorkerLost  # raised when the output reaches this batch, after every earlier result
