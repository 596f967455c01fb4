"""Moving a whole memory between backends: export to a file, import from one, or migrate directly.

The format is JSON lines (gzip when the file name ends in ``.gz``), written and read as a stream:

    {"omnimem": "memory", "format": 1, "config": {...}, "counts": {"items": N, ...}}   the header
    {"t": "items", "r": {...item...}, "v": {"text": "<base64 float32>"}}                an item, its vectors
    {"t": "<table>", "r": [...]}                                                       a row (stores.transfer.TABLES)
    {"t": "blobs", "r": ["<address>", "<base64>"]}                                    a media blob
    {"end": true, "counts": {...}, "checksum": "<sha256>"}                            the trailer

The destination is created with the source's config (so the same encoder, whose vectors are copied,
not recomputed), items are added in their original order (episodic nodes, full text and neighbour
order follow), then every other table, then the blobs; vector indexes are rebuilt at the end. A copy
is verified: the item count, the other tables' row counts and a checksum of the item texts (sha256
over the sorted ``(id, text)`` pairs) must match the source's, else :class:`CorruptInput` says which.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from omnimem.config import MemoryConfig
from omnimem.errors import ConfigError, CorruptInput, NotFound
from omnimem.memory.forgetting import blob_addresses
from omnimem.stores.transfer import BYTES, TABLES
from omnimem.types import Item

__all__ = ["export_memory", "import_memory", "migrate_memory", "text_checksum", "FORMAT"]

log = logging.getLogger(__name__)

FORMAT = 1  # the export format version
_BATCH = 500  # items per destination transaction
Progress = Callable[[int, int], None]  # (records done, records in all)


def text_checksum(memory: Any) -> str:
    """sha256 over the memory's sorted ``(id, text)`` pairs: equal for two copies of one memory."""
    digest = hashlib.sha256()
    ids = sorted(memory.store.ids())
    for start in range(0, len(ids), 1_000):
        for item in memory.store.get(ids[start : start + 1_000]):
            digest.update(json.dumps([item.id, item.text], ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()


def _records(memory: Any) -> Iterator[dict[str, Any]]:
    """The memory as a stream of export records (header first, trailer last)."""
    store, spaces = memory.store, list(memory.indexes)
    counts = {"items": len(store)}
    yield {"omnimem": "memory", "format": FORMAT, "source": memory.location, "config": memory.config.to_dict(), "counts": counts}  # fmt: skip
    ids = list(store.ids())
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        vectors = {space: dict(zip(*store.vectors(space, chunk))) for space in spaces}
        for item in store.get(chunk):
            if item is None:  # deleted while exporting: the trailer's count says what was copied
                continue
            found = {s: _b64(v[item.id]) for s, v in vectors.items() if item.id in v}
            yield {"t": "items", "r": item.to_dict(), "v": found}
    tables: dict[str, int] = {}
    for table in TABLES:
        for row in store.dump(table):
            tables[table] = tables.get(table, 0) + 1
            yield {"t": table, "r": [_b64(v) if isinstance(v, bytes) else v for v in row]}
    blobs = 0
    for address in sorted({a for item in _all_items(store) for a in blob_addresses(item)}):
        if address in memory.blobs:
            blobs += 1
            yield {"t": "blobs", "r": [address, base64.b64encode(memory.blobs.get(address)).decode("ascii")]}
    yield {"end": True, "counts": {"items": len(ids), **tables, "blobs": blobs}, "checksum": text_checksum(memory)}


def export_memory(memory: Any, output: str | os.PathLike[str], *, progress: Progress | None = None) -> dict[str, Any]:
    """Write ``memory`` to ``output`` (JSON lines, gzip for ``.gz``); returns the trailer (counts, checksum)."""
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    trailer: dict[str, Any] = {}
    with _open(tmp, "w") as out:
        total, done = len(memory.store), 0
        for record in _records(memory):
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            if record.get("t") == "items":
                done += 1
                if progress and done % 100 == 0:
                    progress(done, total)
            trailer = record
    os.replace(tmp, path)  # a reader never sees half an export
    log.info("exported %s to %s: %s", memory.location, path, trailer["counts"])
    return trailer


def import_memory(
    source: str | os.PathLike[str], target: str | os.PathLike[str], *, encoder: Any = None,
    progress: Progress | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Create the memory ``target`` (a directory or a ``postgresql://`` URL) from an export file;
    returns the verified trailer. ``target`` must not hold items yet."""
    path = Path(source)
    if not path.is_file():
        raise NotFound(f"{path} does not exist; pass a file written by 'omnimem export'")
    with _open(path, "r") as lines:
        return _load(_parsed(lines, path), target, encoder=encoder, progress=progress, name=str(path))


def migrate_memory(
    source: str | os.PathLike[str], target: str | os.PathLike[str], *, encoder: Any = None,
    progress: Progress | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Copy the memory at ``source`` to ``target`` (directory or URL each), verified as :func:`import_memory`."""
    from omnimem.memory.core import Memory

    with Memory.open(source, encoder=encoder, create=False) as memory:
        return _load(_records(memory), target, encoder=memory.encoder, progress=progress, name=memory.location)


def _load(
    records: Iterable[dict[str, Any]], target: str | os.PathLike[str], *, encoder: Any, progress: Progress | None,
    name: str,
) -> dict[str, Any]:  # fmt: skip
    from omnimem.memory.core import Memory

    stream = iter(records)
    header = next(stream, None)
    if not isinstance(header, dict) or header.get("omnimem") != "memory":
        raise CorruptInput(f"{name} is not an omnimem memory export (no header line); write one with 'omnimem export'")
    if header.get("format", 0) > FORMAT:
        raise ConfigError(f"{name} has export format {header['format']}, newer than this omnimem ({FORMAT}); upgrade")
    config = MemoryConfig.from_dict(header["config"])
    with Memory.open(target, config=config, encoder=encoder) as memory:
        if len(memory.store):
            raise ConfigError(f"{memory.location} already holds {len(memory)} items; import into a new memory")
        trailer = _write(memory, stream, header["counts"].get("items", 0), progress, name)
        memory.rebuild_indexes()
        _verify(memory, trailer, name)
    return trailer


def _write(memory: Any, stream: Iterator[dict[str, Any]], total: int, progress: Progress | None, name: str) -> dict:
    store, batch, done = memory.store, [], 0
    rows: dict[str, list[tuple]] = {}

    def flush_items() -> None:
        nonlocal done
        if batch:
            spaces: dict[str, tuple[list[str], list[np.ndarray]]] = {}
            for item, vectors in batch:
                for space, vector in vectors.items():
                    spaces.setdefault(space, ([], []))[0].append(item.id)
                    spaces[space][1].append(vector)
            store.add([i for i, _ in batch], {s: (ids, np.stack(vs)) for s, (ids, vs) in spaces.items()})
            done += len(batch)
            batch.clear()
            if progress:
                progress(done, total)

    for record in stream:
        if record.get("end"):
            flush_items()
            for table, pending in rows.items():
                store.load(table, pending)
            return record
        table = record.get("t")
        if table == "items":
            vectors = {s: np.frombuffer(base64.b64decode(v), dtype=np.float32) for s, v in record.get("v", {}).items()}
            batch.append((Item(**record["r"]), vectors))
            if len(batch) >= _BATCH:
                flush_items()
        elif table == "blobs":
            memory.blobs.put(base64.b64decode(record["r"][1]), suffix=Path(record["r"][0]).suffix)
        elif table in TABLES:
            flush_items()
            columns = TABLES[table]
            row = tuple(base64.b64decode(v) if (table, c) in BYTES and v is not None else v for c, v in zip(columns, record["r"]))  # fmt: skip
            rows.setdefault(table, []).append(row)
            if len(rows[table]) >= 5 * _BATCH:
                store.load(table, rows.pop(table))
        else:
            raise CorruptInput(f"{name}: unknown record {str(record)[:80]!r}; the file is damaged or not an export")
    raise CorruptInput(f"{name} ends before its trailer: the export was cut short; export again")


def _verify(memory: Any, trailer: dict[str, Any], name: str) -> None:
    counts = trailer.get("counts", {})
    found = {"items": len(memory.store)} | {t: sum(1 for _ in memory.store.dump(t)) for t in TABLES if t in counts}
    wrong = {t: (n, found.get(t)) for t, n in counts.items() if t in found and found[t] < n}
    if wrong:
        raise CorruptInput(f"copy of {name} to {memory.location} is short (expected, found): {wrong}")
    if text_checksum(memory) != trailer.get("checksum"):
        raise CorruptInput(f"copy of {name} to {memory.location}: the item texts' checksum differs")


def _parsed(lines: IO[str], path: Path) -> Iterator[dict[str, Any]]:
    for n, line in enumerate(lines, start=1):
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise CorruptInput(f"{path} line {n} is not JSON ({e}); the export is damaged, export again") from e


def _open(path: Path, mode: str) -> IO[str]:
    if path.name.endswith((".gz", ".gz.part")):
        return gzip.open(path, mode + "t", encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def _b64(value: bytes | np.ndarray) -> str:
    data = value.astype(np.float32).tobytes() if isinstance(value, np.ndarray) else value
    return base64.b64encode(data).decode("ascii")


def _all_items(store: Any) -> Iterator[Item]:
    ids = list(store.ids())
    for start in range(0, len(ids), 1_000):
        yield from (i for i in store.get(ids[start : start + 1_000]) if i is not None)
