"""Full vs compressed context on LoCoMo dev questions with the packaged SmolLM2 (llama.cpp, CPU).

Run: .venv/bin/python benchmarks/vlm_compress.py --questions 20 --budget 256

"Full" is every turn of the session(s) holding the gold evidence, one evidence item per turn;
"compressed" is the same evidence through compress_context at --budget tokens. Prints one JSON line
per setting: mean prompt tokens, time to first token, decode tokens/s, token F1 against the gold
answer, and the process's peak RSS at the end. SmolLM2-135M is tiny: compare the two settings
with each other, not with published scores.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import time
from collections import Counter
from pathlib import Path

from omnimem.vlm import Evidence, answer_messages, compress_context, create_generator
from omnimem.vlm.compress import CompressionConfig


def f1(prediction: str, gold: str) -> float:
    p, g = re.findall(r"\w+", prediction.lower()), re.findall(r"\w+", str(gold).lower())
    common = sum((Counter(p) & Counter(g)).values())
    if not p or not g or not common:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


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
    return text, ttft, n_out / max(end - (first or end), 1e-9) if n_out > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/locomo/locomo_dev.json")
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--budget", type=int, default=256)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    args = parser.parse_args()
    gen = create_generator("smollm2", n_ctx=8192, n_threads=2)
    rows: dict[str, list[tuple[int, float, float, float]]] = {"full": [], "compressed": []}
    for question, gold, evidence in questions(Path(args.data), args.questions):
        full = answer_messages(question, evidence)
        ctx = compress_context(
            question, evidence, gen.count_tokens, CompressionConfig(token_budget=args.budget, family="none")
        )
        for setting, messages in (("full", full), ("compressed", ctx.messages)):
            tokens = sum(gen.count_tokens(m.content) for m in messages)
            text, ttft, rate = run(gen, messages, args.max_new_tokens)
            rows[setting].append((tokens, ttft, rate, f1(text, gold)))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for setting, values in rows.items():
        tokens, ttft, rate, score = zip(*values)
        print(json.dumps({"figure": "vlm_compress", "model": "smollm2-135m-q4_1", "setting": setting,
                          "budget": args.budget if setting == "compressed" else None, "questions": len(values),
                          "prompt_tokens": round(statistics.mean(tokens), 1), "ttft_s": round(statistics.mean(ttft), 3),
                          "tokens_per_s": round(statistics.mean(rate), 1), "f1": round(statistics.mean(score), 3),
                          "peak_rss_mb": round(peak_mb)}))  # fmt: skip


if __name__ == "__main__":
    main()
