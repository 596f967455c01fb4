"""The REST server under concurrent clients: throughput against what the cores allow.

    .venv/bin/python benchmarks/server_load.py [--clients 8] [--requests 400] [--items 2000] [--encoder minilm]

Starts ``omnimem serve`` (a separate process) on a memory of ``--items`` LoCoMo-like turns, then in the
same run: one client alone (its search latency p50 is the baseline), and ``--clients`` concurrent
clients sending ``--requests`` requests in all, searches mixed with adds (``--write-share``). One JSON
line: requests/s, p50/p95 of the concurrent run, the single-client p50, and ``cores / single p50``:
the throughput two cores could reach if every request were a lone search (``vs_ideal`` is the ratio).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import omnimem  # noqa: E402
from omnimem.config import GraphConfig, MemoryConfig  # noqa: E402
from omnimem.encoders import create_encoder  # noqa: E402

NAMES = "Ann Ben Cleo Dev Eli Fay Gus Hana Ivo Jun".split()
TOPICS = "the harbour ferry|a lemon cake|the chess club|a jazz record|the city library|the mountain cabin".split("|")


def turn(rng: random.Random, n: int) -> dict:
    return {
        "speaker": rng.choice(NAMES),
        "text": f"I talked about {rng.choice(TOPICS)} with {rng.choice(NAMES)} (note {n}).",
    }


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--items", type=int, default=2_000)
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument("--write-share", type=float, default=0.1, help="share of requests that add a turn")
    args = parser.parse_args()
    import httpx

    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "memories"
        config = MemoryConfig(graph=GraphConfig(extract_on_add=False))
        with omnimem.Memory.open(root / "load", encoder=create_encoder(args.encoder), config=config) as mem:
            for start in range(0, args.items, 500):
                mem.add_conversation(
                    [turn(rng, n) for n in range(start, min(args.items, start + 500))], session=f"s{start}"
                )
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "omnimem.cli", "serve", str(root), "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}/v1/memories/load"
        try:
            with httpx.Client(timeout=60) as client:
                deadline = time.monotonic() + 120
                while True:
                    try:
                        client.get(f"{base}/search", params={"q": "warm up", "k": 10}).raise_for_status()
                        break
                    except httpx.HTTPError:
                        if time.monotonic() > deadline or server.poll() is not None:
                            raise SystemExit(f"server did not start: {server.stderr.read().decode()[-2000:]}") from None
                        time.sleep(0.5)
                single = []
                for n in range(60):
                    t = time.perf_counter()
                    client.get(
                        f"{base}/search", params={"q": f"what about {TOPICS[n % 6]}?", "k": 10}
                    ).raise_for_status()
                    single.append(1000 * (time.perf_counter() - t))
            latencies: list[float] = []
            errors: list[str] = []
            counter = iter(range(args.requests))
            lock = threading.Lock()

            def worker(seed: int) -> None:
                local = random.Random(seed)
                with httpx.Client(timeout=120) as c:
                    for n in counter:
                        t = time.perf_counter()
                        try:
                            if local.random() < args.write_share:
                                r = c.post(
                                    f"{base}/items", json={"turns": [turn(local, 10**6 + n)], "session": f"w{seed}"}
                                )
                            else:
                                r = c.get(
                                    f"{base}/search", params={"q": f"who mentioned {local.choice(TOPICS)}?", "k": 10}
                                )
                            r.raise_for_status()
                        except httpx.HTTPError as e:
                            with lock:
                                errors.append(str(e))
                            continue
                        with lock:
                            latencies.append(1000 * (time.perf_counter() - t))

            started = time.perf_counter()
            threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(timeout=30)
    single_p50 = pct(single, 0.5)
    ideal = (os.cpu_count() or 2) * 1000 / single_p50
    rps = len(latencies) / wall
    print(json.dumps({
        "bench": "server_load", "clients": args.clients, "requests": args.requests, "items": args.items,
        "write_share": args.write_share, "errors": len(errors), "requests_per_s": round(rps, 1),
        "p50_ms": pct(latencies, 0.5), "p95_ms": pct(latencies, 0.95), "single_client_p50_ms": single_p50,
        "ideal_requests_per_s": round(ideal, 1), "vs_ideal": round(rps / ideal, 2), "encoder": args.encoder,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
