"""LoCoMo evidence-recall evaluation (Maharana et al., ACL 2024).

One memory per conversation, built from its turns (``dia_id`` in metadata, the session's date as
the timestamp, an image's BLIP caption as its text description). Every question with evidence is
asked within its own conversation; evidence recall@k is the share of the question's gold turns among
the top k retrieved turns, averaged over questions. BM25-only and dense-only baselines run in the
same process on the same memories, so the comparison is like for like.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from omnimem.config import SearchConfig
from omnimem.errors import CorruptInput
from omnimem.eval.common import BASELINES, SYSTEMS, Tally, percentile, recalls_at, scratch_memory
from omnimem.eval.folds import fold_lines, fold_report, score_grid, stage_lines, stage_report
from omnimem.eval.grasp import GraspTimer, grasp_lines, grasp_source, grasp_systems, run_grasp
from omnimem.memory import Memory
from omnimem.retrieval.context import STAGES, GraspConfig, estimate_tokens

__all__ = ["load_locomo", "conversation_turns", "parse_evidence", "evaluate_locomo", "CATEGORIES"]

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}


def load_locomo(path: str | Path) -> list[dict[str, Any]]:
    """Read a LoCoMo JSON file (a list of samples); a malformed file raises CorruptInput naming it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise CorruptInput(f"cannot read LoCoMo file {path}: {e}") from e
    if not isinstance(data, list) or not all(isinstance(s, dict) and "conversation" in s for s in data):
        raise CorruptInput(f"{path} is not a LoCoMo file: expected a list of samples with 'conversation'")
    return data


def _session_time(text: str | None) -> str | None:
    """'1:56 pm on 8 May, 2023' -> '2023-05-08T13:56:00' (None when absent or unparseable)."""
    if not text:
        return None
    for fmt in ("%I:%M %p on %d %B, %Y", "%I:%M %p on %d %b, %Y"):
        try:
            return dt.datetime.strptime(text.strip(), fmt).isoformat()
        except ValueError:
            continue
    return None


def conversation_turns(sample: dict[str, Any]) -> Iterator[tuple[str, str | None, list[dict[str, Any]]]]:
    """Yield ``(session name, ISO date, turns)`` per session in order; turns ready for add_conversation."""
    conv = sample["conversation"]
    numbers = sorted(int(m.group(1)) for k in conv if (m := re.fullmatch(r"session_(\d+)", k)))
    for n in numbers:
        when = _session_time(conv.get(f"session_{n}_date_time"))
        turns = []
        for turn in conv[f"session_{n}"]:
            text = turn.get("text", "")
            if turn.get("blip_caption"):
                text = f"{text} [shares an image: {turn['blip_caption']}]".strip()
            if not text.strip():
                continue
            turns.append(
                {
                    "speaker": turn.get("speaker"),
                    "text": text,
                    "timestamp": when,
                    "metadata": {"dia_id": turn["dia_id"]},
                }  # fmt: skip
            )
        yield f"session_{n}", when, turns


def parse_evidence(evidence: Sequence[Any], known: set[str]) -> list[str]:
    """Lenient parse of evidence ids ('D8:6; D9:17', 'D:11:26', 'D30:05'); unknown ids are dropped."""
    out: list[str] = []
    for entry in evidence:
        for piece in re.split(r"[;,\s]+", str(entry)):
            m = re.fullmatch(r"D:?(\d+):(\d+)", piece.strip())
            if m:
                dia_id = f"D{int(m.group(1))}:{int(m.group(2))}"
                if dia_id in known and dia_id not in out:
                    out.append(dia_id)
    return out


def evaluate_locomo(
    path: str | Path, *, ks: Sequence[int] = (5, 10), encoder: Any = None, workdir: str | Path | None = None,
    limit: int | None = None, grasp: bool = False, ablation: bool = False, budget: int = 1024,
    questions: int | None = None, backend: str | None = None, folds: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Run the evaluation; returns a dict with overall / per-category recall for every system.

    Keys: ``recall@k`` (hybrid), ``bm25_recall@k``, ``dense_recall@k``, ``by_category``,
    ``questions``, ``conversations``, ``turns``, ``seconds``, ``ingest_seconds``, ``query_ms_p50``.
    With ``grasp`` (and ``ablation``), also ``grasp[-no-<stage>]_recall@k``, ``_context_recall`` and
    ``_tokens`` (the context packed into ``budget`` tokens), ``full_tokens`` (the whole conversation)
    and ``grasp_query_ms_p50`` (see :mod:`omnimem.eval.grasp`). ``questions``: only the first N
    questions of each conversation (a quick run). ``backend``: build the memories in a PostgreSQL
    database (``postgresql://...``; a schema per conversation, dropped after) instead of a temporary folder.
    Also ``without_adversarial`` (the means without category 5, as most published systems report),
    ``skipped_questions`` (no parsable evidence) and, with ``folds`` (two conversations or more), the
    held-out search settings of :mod:`omnimem.eval.folds` (conversations alternate between two folds)
    and, with ``ablation`` too, ``stage_folds``: each GRASP stage's held-out effect (:func:`stage_report`).
    Episode summaries are refreshed after ingest, as a user's memory would have them.
    """
    systems = grasp_systems(grasp, ablation)
    timer = GraspTimer()
    started = time.perf_counter()
    samples = load_locomo(path)[:limit] if limit else load_locomo(path)
    kmax = max(ks)
    overall, by_cat, no_adversarial = Tally(), defaultdict(Tally), Tally()
    ingest_s, query_times, turns_total, skipped = 0.0, [], 0, 0
    fold_rows: list[tuple[int, dict[str, float]]] = []
    stage_rows: list[tuple[int, str, dict[str, float]]] = []
    cache: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for n, sample in enumerate(samples):
            t0 = time.perf_counter()
            with scratch_memory(tmp, f"conv{n}", backend) as target, Memory.open(target, encoder=encoder) as mem:
                known: set[str] = set()
                for session, _, turns in conversation_turns(sample):
                    mem.add_conversation(turns, session=session, episode=sample.get("sample_id"))
                    known.update(t["metadata"]["dia_id"] for t in turns)
                    turns_total += len(turns)
                encoder = mem.encoder  # reuse the loaded model for the next conversation
                mem.episodic.refresh()  # summaries as a user's memory has them (consolidation writes them)
                source = grasp_source(mem, systems, cache) if systems else mem
                ingest_s += time.perf_counter() - t0
                full_tokens = float(sum(estimate_tokens(_prompt_text(i)) for i in mem.store.get(list(mem.store.ids()))))
                for qa in sample.get("qa", [])[:questions]:
                    gold = parse_evidence(qa.get("evidence", []), known)
                    if not gold:
                        skipped += 1
                        continue
                    recalls: dict[str, float] = {}
                    if folds:
                        grid = score_grid(mem, str(qa["question"]), gold, kmax, lambda h: h.metadata.get("dia_id"))
                        fold_rows.append((n % 2, grid))
                    for system, (retrievers, smooth) in SYSTEMS.items():
                        q0 = time.perf_counter()
                        hits = mem.search(str(qa["question"]), k=kmax, retrievers=retrievers, neighbours=smooth)
                        if system == "hybrid":
                            query_times.append(time.perf_counter() - q0)
                        recalls.update(recalls_at(system, [h.metadata.get("dia_id") for h in hits], gold, ks))
                    if systems:
                        recalls.update(
                            run_grasp(
                                source,
                                str(qa["question"]),
                                systems,
                                ks=ks,
                                budget=budget,
                                gold=gold,
                                key_of=lambda item: item.metadata.get("dia_id"),
                                timer=timer,
                            )
                        )
                        recalls["full_tokens"] = full_tokens
                    overall.add(recalls)
                    category = CATEGORIES.get(qa.get("category"), str(qa.get("category")))
                    if folds and systems:
                        stage_rows.append((n % 2, category, {s: recalls[f"{s}_recall@{kmax}"] for s in systems}))
                    by_cat[category].add(recalls)
                    if category != "adversarial":
                        no_adversarial.add(recalls)
    result: dict[str, Any] = dict(overall.means())
    result["by_category"] = {cat: {**t.means(), "questions": t.count} for cat, t in sorted(by_cat.items())}
    result["without_adversarial"] = {**no_adversarial.means(), "questions": no_adversarial.count}
    result["skipped_questions"] = skipped
    if folds and len(samples) >= 2 and fold_rows:
        result["folds"] = fold_report(fold_rows, SearchConfig(), kmax)
    if folds and len(samples) >= 2 and stage_rows:
        result["stage_folds"] = stage_report(stage_rows, GraspConfig(), kmax, STAGES)
    result.update(
        questions=overall.count, conversations=len(samples), turns=turns_total,
        ingest_seconds=round(ingest_s, 2),
        query_ms_p50=round(1000 * percentile(query_times, 0.5), 2) if query_times else None,
        seconds=round(time.perf_counter() - started, 2),
    )  # fmt: skip
    if systems:
        result.update(grasp_query_ms_p50=timer.p50_ms(), budget_tokens=budget)
    return result


def _prompt_text(item: Any) -> str:
    return f"{item.heading}: {item.text}" if item.heading else item.text


def format_report(result: dict[str, Any], ks: Sequence[int]) -> str:
    """A small plain-text table of the result."""
    lines = [f"LoCoMo evidence recall: {result['questions']} questions, {result['conversations']} conversations"]
    header = "".join(f"{f'@{k}':>9}" for k in ks)
    lines.append(f"{'system':<22}{header}")
    for name, prefix in BASELINES:
        lines.append(f"{name:<22}" + "".join(f"{result[f'{prefix}recall@{k}']:>9.3f}" for k in ks))
    lines += grasp_lines(result, ks)
    plain = result["without_adversarial"]
    lines.append(
        f"{'hybrid w/o adversarial':<22}" + "".join(f"{plain.get(f'recall@{k}', 0.0):>9.3f}" for k in ks)
        + f"   ({plain['questions']} questions; {result['skipped_questions']} skipped without parsable evidence)"
    )  # fmt: skip
    lines += fold_lines(result.get("folds"))
    lines += stage_lines(result.get("stage_folds"))
    systems = [("hybrid", "")] + ([("grasp", "grasp_")] if "grasp_recall@" + str(ks[0]) in result else [])
    for system, prefix in systems:
        lines.append(f"by category ({system}):")
        for cat, values in result["by_category"].items():
            cells = "".join(f"{values[f'{prefix}recall@{k}']:>9.3f}" for k in ks)
            label = f"{cat} ({values['questions']})"
            lines.append(f"  {label:<20}{cells}")
    lines.append(
        f"ingest {result['ingest_seconds']} s, query p50 {result['query_ms_p50']} ms, total {result['seconds']} s"
    )
    return "\n".join(lines)
