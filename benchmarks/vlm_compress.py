"""Full vs compressed context on LoCoMo dev questions with the packaged SmolLM2 (llama.cpp, CPU).

Run: .venv/bin/python benchmarks/vlm_compress.py --questions 20 --budget 256  (or --quick)

"Full" is every turn of the session(s) holding the gold evidence, one evidence item per turn;
"compressed" is the same evidence through compress_context at --budget tokens. Prints one JSON line
per setting: mean prompt tokens, time to first token, decode tokens/s, exact match and token F1
against the gold answer, and the peak RSS while that setting ran (the kernel's high-water mark is
reset before each setting, see benchmarks/vlm_visual.py; the llama.cpp context is allocated at load,
so expect little difference). SmolLM2-135M is tiny: compare the two settings with each other, not
with published scores. The tiny-VLM half (frames, FastV, SnapKV) is benchmarks/vlm_visual.py.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections import Counter
from pathlib import Path

from vlm_visual import peak_rss_mb, reset_peak_rss

from omnimem.data import data_dir
from omnimem.vlm import Evidence, answer_messages, compress_context, create_generator
from omnimem.vlm.compress import CompressionConfig


def f1(prediction: str, gold: str) -> float:
    p, g = re.findall(r"\w+", prediction.lower()), re.findall(r"\w+", str(gold).lower())
    common = sum((Counter(p) & Counter(g)).values())
    if not p or not g or not common:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold: str) -> float:
    norm = " ".join(re.findall(r"\w+", prediction.lower())), " ".join(re.findall(r"\w+", str(gold).lower()))
    return float(bool(norm[1]) and norm[0] == norm[1])


def questions(path: Path, limit: int):
    for sample in json.loads(path.read_text()):
        conv = sample["conversation"]
        for qa in sample["qa"]:
            if "answer" not in qa or not qa.get("evidence"):
                continue
            sessions = sorted({e.split(":")[0][1:] for e in qa["evidence"] if re.match(r"D\d+:", e)})
            evidence = [
                Evidence(
                    turn["dia_id"], f"{turn['speaker']}: {turn['text']}", source=conv.get(f"session_{s}_date_time")
                )
                for s in sessions
                for turn in conv.get(f"session_{s}", [])
            ]
            if evidence:
                yield qa["question"], str(qa["answer"]), evidence
                limit -= 1
                if limit == 0:
                    return


def run(gen, messages, max_new_tokens):
    start = time.perf_counter()
    first, pieces = None, []
    for piece in gen.stream(messages, max_new_tokens=max_new_tokens):
        first = first or time.perf_counter()
        pieces.append(piece)
    end = time.perf_counter()
    text = "".join(pieces)
    n_out = gen.count_tokens(text)
    ttft = (first or end) - start
    return text, ttft, (n_out - 1) / max(end - (first or end), 1e-9) if n_out > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="locomo_dev.json (default: the shared data's)")
    parser.add_argument("--quick", action="store_true", help="5 questions")
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--budget", type=int, default=256)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    args = parser.parse_args()
    if args.quick:
        args.questions = 5
    root = data_dir()
    data = Path(args.data) if args.data else (root / "locomo" / "locomo_dev.json" if root else None)
    if data is None or not data.is_file():
        print(json.dumps({"figure": "vlm_compress", "skipped": "no LoCoMo dev file (shared data locomo/ absent)"}))
        return
    gen = create_generator("smollm2", n_ctx=8192, n_threads=2)
    items = []
    for question, gold, evidence in questions(data, args.questions):
        ctx = compress_context(
            question, evidence, gen.count_tokens, CompressionConfig(token_budget=args.budget, family="none")
        )
        items.append((gold, {"full": answer_messages(question, evidence), "compressed": ctx.messages}))
    run(gen, items[0][1]["full"][:1], 2)  # warm-up
    for setting in ("full", "compressed"):
        reset = reset_peak_rss()
        values = []
        for gold, prompts in items:
            messages = prompts[setting]
            tokens = sum(gen.count_tokens(m.content) for m in messages)
            text, ttft, rate = run(gen, messages, args.max_new_tokens)
            values.append((tokens, ttft, rate, exact_match(text, gold), f1(text, gold)))
        tokens, ttft, rate, em, score = zip(*values)
        print(json.dumps({"figure": "vlm_compress", "model": "smollm2-135m-q4_1", "setting": setting,
                          "budget": args.budget if setting == "compressed" else None, "questions": len(values),
                          "prompt_tokens": round(statistics.mean(tokens), 1), "ttft_s": round(statistics.mean(ttft), 3),
                          "tokens_per_s": round(statistics.mean(rate), 1), "exact_match": round(statistics.mean(em), 3),
                          "f1": round(statistics.mean(score), 3), "peak_rss_mb": round(peak_rss_mb()),
                          "peak_reset": reset}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
