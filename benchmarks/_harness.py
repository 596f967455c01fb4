"""Helpers shared by the storage benchmarks ``crash.py`` and ``concurrency.py`` (not a benchmark itself).

A memory location is a string passed straight to ``Memory.open``: a directory today, a database URL
for a future backend. Each script runs its workers as fresh Python processes of itself
(``--role ...``), so a worker is as cold as a user's process and can be SIGKILLed.
"""

from __future__ import annotations

import json
import os
import queue
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omnimem import Memory, MemoryConfig  # noqa: E402
from omnimem.config import EncoderConfig, GraphConfig  # noqa: E402
from omnimem.data import data_dir  # noqa: E402
from omnimem.eval.locomo import conversation_turns, load_locomo  # noqa: E402

# Short replies people repeat within one session; the same speaker saying one twice is two turns.
REPEATS = ("Yes.", "Yeah!", "Okay.", "Haha, yes.", "Thanks!", "Wow.")


@dataclass(frozen=True)
class Session:
    """One LoCoMo session: its name, ISO date and ``(speaker, text)`` turns."""

    name: str  # "conv<k>/session_<n>"
    when: str | None  # ISO-8601 date of the session
    turns: tuple[tuple[str, str], ...]  # (speaker, text) in order


def locomo_path() -> Path | None:
    """``locomo/locomo_dev.json`` in the shared data folder, or None when it is absent."""
    root = data_dir()
    path = None if root is None else root / "locomo" / "locomo_dev.json"
    return path if path is not None and path.is_file() else None


def locomo_sessions(path: Path) -> list[Session]:
    """Every session of every conversation (metadata dropped: a turn is its speaker, text and date)."""
    out = []
    for k, sample in enumerate(load_locomo(path)):
        for name, when, turns in conversation_turns(sample):
            out.append(Session(f"conv{k}/{name}", when, tuple((t["speaker"], t["text"]) for t in turns)))
    return out


def locomo_questions(path: Path) -> list[str]:
    """The LoCoMo questions, used as realistic search queries."""
    return [qa["question"] for sample in load_locomo(path) for qa in sample.get("qa", []) if qa.get("question")]


def skipped(bench: str, reason: str) -> None:
    """Print the JSON line of a benchmark that cannot run here (no data), and exit cleanly."""
    print(json.dumps({"bench": bench, "skipped": reason}), flush=True)


def memory_config(encoder: str, graph: bool) -> MemoryConfig | None:
    """The config to open with: None (``Memory.open(path)``'s default) for MiniLM with graph extraction."""
    config = MemoryConfig(encoder=EncoderConfig(name=encoder), graph=GraphConfig(extract_on_add=graph))
    return None if config == MemoryConfig() else config


def open_memory(location: str, encoder: str, graph: bool, *, model: Any = None) -> Memory:
    """``Memory.open(location)`` as a user would call it; ``model``: an already-loaded encoder to reuse."""
    config = memory_config(encoder, graph)
    options: dict[str, Any] = {} if model is None else {"encoder": model}
    return (
        Memory.open(location) if config is None and model is None else Memory.open(location, config=config, **options)
    )


def index_out_of_step(mem: Memory) -> int:
    """How many ids differ between the text space's FAISS index and the vectors SQLite holds."""
    in_index = set(mem.indexes["text"].index.ids())
    in_store = set(mem.store.vector_ids("text"))
    return len(in_index ^ in_store)


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def timed_searches(mem: Memory, queries: Sequence[str], rng: random.Random, n: int) -> tuple[list[float], list[str]]:
    """``n`` ``mem.search(q, k=10)`` calls on random queries: the latency (ms) of each, failed ones
    included (a caller waits for those too), and the names of the errors raised."""
    latencies, errors = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        try:
            mem.search(rng.choice(queries), k=10)
        except Exception as e:  # the benchmark counts every failure a caller would see
            errors.append(type(e).__name__)
        latencies.append(1000 * (time.perf_counter() - t0))
    return latencies, errors


class Child:
    """``script`` run as a fresh Python process, and the lines it prints, each with its arrival time."""

    def __init__(self, script: str, args: Sequence[str], stderr: Path) -> None:
        with open(stderr, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-u", script, *args], stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1
            )
        self.spawned = time.monotonic()
        self.lines: list[tuple[float, str]] = []  # (time.monotonic(), line) in order
        self.dead = False  # its stdout closed: it exited
        self._queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._queue.put(line.strip())
        self._queue.put(None)

    def wait(self, until: Callable[[], bool], timeout: float) -> bool:
        """Collect lines until ``until()`` holds, the process exits or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while not until() and not self.dead and (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                self.dead = True
            else:
                self.lines.append((time.monotonic(), line))
        return until()

    def first(self, prefix: str) -> float | None:
        """When the first line starting with ``prefix`` came (None: not yet)."""
        return next((at for at, line in self.lines if line.startswith(prefix)), None)

    def times(self, prefix: str) -> list[float]:
        return [at for at, line in self.lines if line.startswith(prefix)]

    def last_json(self) -> dict | None:
        """The last line that is a JSON object (a worker's report)."""
        for _, line in reversed(self.lines):
            if line.startswith("{"):
                return json.loads(line)
        return None

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL
        self.proc.wait()


def wait_for_file(path: Path, timeout: float, poll: float = 0.05) -> bool:
    """Wait for ``path`` to exist; a worker whose parent has gone exits instead."""
    deadline, parent = time.monotonic() + timeout, os.getppid()
    while not path.exists():
        if os.getppid() != parent:
            raise SystemExit("the benchmark's parent process has gone")
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
    return True


def tail(path: Path, chars: int = 600) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""
