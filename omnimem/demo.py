"""The main job on the embedded default: remember a real conversation, answer questions with evidence.

    python -m omnimem.demo [--memory DIR] [--questions N] [--budget 400] [--no-llm]

It ingests the first LoCoMo conversation from the shared data folder (``$OMNIMEM_DATA`` or
``../shared/data``) or, on a fresh clone without it, a small sample conversation bundled here; then
asks questions and prints, for each, the GRASP context (``mem.context``: what fits ``--budget`` tokens),
an answer from the packaged SmolLM2-135M (llama.cpp) that cites its evidence, and the evidence turns
with their citations (dialogue id, speaker, session date) and the top graph facts.
Everything runs offline: MiniLM encoder, SQLite, FAISS, SmolLM2. ``--no-llm`` prints evidence only.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from omnimem.data import data_dir
from omnimem.memory import Memory

SAMPLE = [
    ("session_1", "2024-03-02T10:00:00", [
        ("Ana", "I finally moved to Lisbon last week, the flat is near the river."),
        ("Ben", "Congrats! Are you still working at the bakery?"),
        ("Ana", "No, I started a new job as a nurse at Santa Maria hospital."),
        ("Ben", "I adopted a grey cat called Pixel from the shelter."),
    ]),
    ("session_2", "2024-04-14T18:30:00", [
        ("Ben", "Pixel knocked my guitar off the shelf again."),
        ("Ana", "I ran my first half marathon on Sunday, 2 hours 5 minutes!"),
        ("Ben", "Amazing. I'm learning Portuguese so I can visit you in the summer."),
    ]),
]  # fmt: skip
SAMPLE_QUESTIONS = ["Where does Ana live now?", "What is Ana's job?", "What pet does Ben have?"]


def _locomo() -> tuple[list[tuple[str, str | None, list[dict[str, Any]]]], list[str]] | None:
    root = data_dir()
    path = root / "locomo" / "locomo_dev.json" if root else None
    if path is None or not path.exists():
        return None
    from omnimem.eval.locomo import conversation_turns, load_locomo

    sample = load_locomo(path)[0]
    questions = [q["question"] for q in sample["qa"] if q.get("answer") is not None]
    return list(conversation_turns(sample)), questions


def _sample() -> tuple[list[tuple[str, str | None, list[dict[str, Any]]]], list[str]]:
    sessions = []
    for name, when, turns in SAMPLE:
        sessions.append(
            (
                name,
                when,
                [
                    {"speaker": s, "text": t, "timestamp": when, "metadata": {"dia_id": f"{name}:{n + 1}"}}
                    for n, (s, t) in enumerate(turns)
                ],
            )  # fmt: skip
        )
    return sessions, SAMPLE_QUESTIONS


def _generator():
    """The packaged SmolLM2 on llama.cpp, or None (with a note) when it is not installed."""
    from omnimem.errors import BackendUnavailable
    from omnimem.vlm import create_generator

    try:
        return create_generator("smollm2")
    except BackendUnavailable as e:
        print(f"note: answering without an LLM ({e})\n")
        return None


def _answer(generator, question: str, hits) -> str:
    """SmolLM2's answer, its ``[E<n>]`` citations turned into the evidence's dialogue ids."""
    from omnimem.vlm.prompts import Evidence, answer_messages

    evidence = [
        Evidence(id=f"E{n}", text=f"{h.speaker}: {h.text}" if h.speaker else h.text, source=(h.event_time or "")[:10])
        for n, h in enumerate(hits, start=1)
    ]
    text = generator.generate(answer_messages(question, evidence), max_new_tokens=48).text.strip()
    for n, hit in enumerate(hits, start=1):
        text = text.replace(f"[E{n}]", f"[{hit.metadata.get('dia_id', hit.id[:8])}]")
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m omnimem.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--memory", default=".omnimem-demo", help="memory directory (default: .omnimem-demo)")
    parser.add_argument("--questions", type=int, default=5, help="how many questions to ask (default: 5)")
    parser.add_argument("--k", type=int, default=3, help="evidence turns shown per question (default: 3)")
    parser.add_argument("--budget", type=int, default=400, help="context budget in tokens (default: 400)")
    parser.add_argument("--no-llm", action="store_true", help="print the evidence only, no generated answer")
    args = parser.parse_args(argv)

    found = _locomo()
    sessions, questions = found if found else _sample()
    source = "LoCoMo conversation 1 (shared data)" if found else "the bundled sample conversation"
    generator = None if args.no_llm else _generator()
    t0 = time.perf_counter()
    with Memory.open(args.memory) as mem:
        before = len(mem)
        for session, _, turns in sessions:
            mem.add_conversation(turns, session=session, source=source)
        took = time.perf_counter() - t0
        print(f"memory {mem.path}: {len(mem)} turns from {source} ({len(mem) - before} new, {took:.1f} s)\n")
        for question in questions[: args.questions]:
            q0 = time.perf_counter()
            ctx = mem.context(question, budget_tokens=args.budget)
            hits = [h for h in mem.store.get([e.id for e in ctx.items[: args.k]]) if h is not None]
            took_ms = 1000 * (time.perf_counter() - q0)
            print(f"Q: {question}   [context {took_ms:.0f} ms: {len(ctx)} entries, {ctx.tokens}/{args.budget} tokens]")
            if generator is not None:
                print(f"A: {_answer(generator, question, hits)}")
            for rank, hit in enumerate(hits, start=1):
                cite = hit.metadata.get("dia_id", hit.id[:8])
                date = (hit.event_time or "")[:10]
                print(f"  E{rank}. [{cite} | {hit.speaker} | {date}] {hit.text}")
            for fact in ctx.facts[:2]:
                print(f"  fact: {fact.text}")
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
