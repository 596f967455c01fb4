"""The server's MemoryPool: shared encoders, a bound on open memories, and opening outside its lock."""

from __future__ import annotations

import threading
import time

import pytest
from serverkit import fast_config

from omnimem.errors import ConfigError, CorruptInput, NotFound
from omnimem.memory import Memory
from omnimem.server.pool import MemoryPool, SharedEncoder


def _on_disk(root, *names, dim=64):
    """Memories under ``root`` whose saved configs name the hash encoder (no model to load)."""
    from omnimem.encoders.hashing import HashEncoder

    for name in names:
        with Memory.open(root / name, encoder=HashEncoder(dim), config=fast_config()) as mem:
            mem.add(f"{name} keeps bees")


@pytest.fixture
def counted_encoders(monkeypatch):
    """Every encoder the pool builds, in order."""
    from omnimem.server import pool as pool_module

    built = []
    real = pool_module.create_encoder

    def create(name, **options):
        built.append((name, options))
        return real(name, **options)

    monkeypatch.setattr(pool_module, "create_encoder", create)
    return built


def test_memories_naming_one_encoder_share_it(tmp_path, counted_encoders):
    from dataclasses import replace

    from omnimem.config import EncoderConfig

    _on_disk(tmp_path, "a", "b")
    pool = MemoryPool(tmp_path, config=replace(fast_config(), encoder=EncoderConfig(name="hash")))
    pool.create("c")  # a new memory: the pool's config names its encoder
    with pool.use("a") as a, pool.use("b") as b, pool.use("c") as c:
        assert a.encoder is b.encoder is c.encoder and isinstance(a.encoder, SharedEncoder)
        assert a.search("bees")[0].text == "a keeps bees" and b.search("bees")[0].text == "b keeps bees"
    assert counted_encoders == [("hash", {"device": "cpu", "batch_size": 64})]
    pool.close()


def test_a_given_encoder_is_used_for_every_memory(tmp_path, hash_encoder, counted_encoders):
    _on_disk(tmp_path, "a")
    pool = MemoryPool(tmp_path, encoder=hash_encoder, config=fast_config())
    pool.create("b")
    with pool.use("a") as a, pool.use("b") as b:
        assert a.encoder is b.encoder is hash_encoder
    assert counted_encoders == []
    pool.close()


def test_the_least_recently_used_idle_memory_closes_and_reopens(tmp_path, hash_encoder):
    _on_disk(tmp_path, "a", "b", "c")
    pool = MemoryPool(tmp_path, encoder=hash_encoder, max_open=2)
    with pool.use("a") as first:
        pass
    with pool.use("b"), pool.use("a"):  # a is now more recent than b
        pass
    with pool.use("c"):
        pass
    assert pool.open_names() == ["a", "c"]  # b was the least recently used
    with pool.use("b") as b:  # reopens transparently
        assert b.search("bees")[0].text == "b keeps bees"
    assert pool.open_names() == ["c", "b"] and first._closed
    pool.close()
    assert pool.open_names() == []


def test_a_memory_in_use_is_never_evicted(tmp_path, hash_encoder):
    _on_disk(tmp_path, "a", "b", "c")
    pool = MemoryPool(tmp_path, encoder=hash_encoder, max_open=1)
    with pool.use("a") as a:
        with pool.use("b"):
            assert sorted(pool.open_names()) == ["a", "b"]  # over the bound while both are busy
        with pool.use("c"):
            pass
        assert pool.open_names() == ["a"] and not a._closed
        assert len(a) == 1
    pool.close()


def test_max_open_is_validated(tmp_path):
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="max_open"):
            MemoryPool(tmp_path, max_open=bad)


@pytest.fixture
def slow_open(monkeypatch):
    """Memory.open sleeps 1.5 s for a memory named ``slow``; returns the list of paths it opened."""
    opened = []
    real = Memory.open.__func__

    def open_(cls, path, **kw):
        opened.append(path.name)
        if path.name == "slow":
            time.sleep(1.5)
        return real(cls, path, **kw)

    monkeypatch.setattr(Memory, "open", classmethod(open_))
    return opened


def test_a_slow_open_does_not_delay_other_memories(tmp_path, hash_encoder, slow_open):
    _on_disk(tmp_path, "fast", "slow")
    pool = MemoryPool(tmp_path, encoder=hash_encoder)
    with pool.use("fast"):
        pass

    def open_slow():
        with pool.use("slow"):
            pass

    opener = threading.Thread(target=open_slow)
    opener.start()
    while "slow" not in slow_open:
        time.sleep(0.01)
    start = time.monotonic()
    with pool.use("fast") as mem:
        mem.search("bees")
    assert time.monotonic() - start < 0.75  # not behind the 1.5 s open of "slow"
    opener.join()
    pool.close()


def test_concurrent_requests_open_a_memory_once(tmp_path, hash_encoder, slow_open):
    _on_disk(tmp_path, "slow")
    slow_open.clear()
    pool = MemoryPool(tmp_path, encoder=hash_encoder)
    seen = []

    def use():
        with pool.use("slow") as mem:
            seen.append(mem)

    threads = [threading.Thread(target=use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert slow_open == ["slow"] and len(seen) == 4 and len({id(m) for m in seen}) == 1
    pool.close()


def test_a_failed_open_is_not_cached(tmp_path, hash_encoder):
    pool = MemoryPool(tmp_path, encoder=hash_encoder)
    with pytest.raises(NotFound):
        with pool.use("nope"):
            pass
    _on_disk(tmp_path, "bad")
    (tmp_path / "bad" / "config.json").write_text("{not json")
    for _ in range(2):  # the second request tries again rather than waiting on the first
        with pytest.raises(CorruptInput, match="config.json"):
            with pool.use("bad"):
                pass
    assert pool.open_names() == [] and pool._pending == {}


def test_max_open_from_create_app_and_the_cli(tmp_path, monkeypatch):
    from serverkit import make_app

    from omnimem.cli import main

    assert make_app(tmp_path, max_open=3).state.omnimem.pool.max_open == 3
    with pytest.raises(ConfigError, match="max_open"):
        make_app(tmp_path, max_open=0)
    started = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: started.append(app))
    assert main(["serve", str(tmp_path / "root"), "--max-open", "5"]) == 0
    assert started[0].state.omnimem.pool.max_open == 5
    assert main(["serve", str(tmp_path / "root"), "--max-open", "0"]) == 2
