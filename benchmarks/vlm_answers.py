"""How often the packaged SmolLM2 answers simple factual questions right (llama.cpp, CPU, greedy).

Run: .venv/bin/python benchmarks/vlm_answers.py  (--verbose prints every answer to stderr; --quick asks 3)

The tests do not check what a 135M-parameter model says: its greedy words change with the CPU
kernel's float rounding (one llama.cpp build answers "What is the capital of France?" with "Paris",
another with French nonsense). Answer quality is measured here instead: a handful of questions with
one known answer each; an answer is right when it contains the expected word (or one of its spellings,
"7" for "seven"). Prints one JSON line: the rate of right answers, the number of questions, the model,
the backend and the CPU features llama.cpp was built to use (compare rates between machines with it).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time

from omnimem.vlm import Message, create_generator

SYSTEM = "You are a helpful assistant. Answer in one short sentence."
# (question, accepted words): matched case-insensitively as whole words in the answer
QUESTIONS: list[tuple[str, tuple[str, ...]]] = [
    ("What is the capital of France?", ("Paris",)),
    ("What is the capital of Japan?", ("Tokyo",)),
    ("What is the capital of Italy?", ("Rome",)),
    ("What is the capital of Germany?", ("Berlin",)),
    ("What color is the sky on a clear day?", ("blue",)),
    ("How many days are there in a week?", ("seven", "7")),
    ("How many legs does a spider have?", ("eight", "8")),
    ("What is the largest planet in our solar system?", ("Jupiter",)),
    ("What planet do we live on?", ("Earth",)),
    ("What is the chemical formula of water?", ("H2O", "H₂O")),
    ("Who wrote the play Romeo and Juliet?", ("Shakespeare",)),
    ("At how many degrees Celsius does water freeze?", ("0", "zero")),
    ("Which animal is called the king of the jungle?", ("lion", "lions")),
    ("What language do most people in Brazil speak?", ("Portuguese",)),
    ("Which gas do plants take in from the air to make food?", ("carbon dioxide", "CO2")),
    ("What is the opposite of hot?", ("cold",)),
]


def is_right(answer: str, accepted: tuple[str, ...]) -> bool:
    return any(re.search(rf"(?<!\w){re.escape(word)}(?!\w)", answer, re.IGNORECASE) for word in accepted)


def cpu_features() -> str:
    """The SIMD features the installed llama.cpp uses (what makes a tiny model's words differ)."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode(errors="replace")
    return ",".join(re.findall(r"(\w+) = 1", info))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2", help="a llama.cpp model: 'smollm2' or a .gguf path")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--verbose", action="store_true", help="print each question and answer to stderr")
    parser.add_argument("--quick", action="store_true", help="the first 3 questions (a smoke run, not a figure)")
    args = parser.parse_args()
    questions = QUESTIONS[:3] if args.quick else QUESTIONS
    try:
        import llama_cpp
    except ImportError:
        print(json.dumps({"figure": "vlm_answers", "skipped": "llama-cpp-python is not installed"}))
        return
    gen = create_generator("llamacpp", args.model, n_ctx=1024, n_threads=args.threads)
    start = time.perf_counter()
    right = 0
    for question, accepted in questions:
        out = gen.generate([Message("system", SYSTEM), Message("user", question)], max_new_tokens=args.max_new_tokens)
        ok = is_right(out.text, accepted)
        right += ok
        if args.verbose:
            print(f"{'ok  ' if ok else 'MISS'} {question} -> {out.text!r}", file=sys.stderr)
    print(json.dumps({
        "figure": "vlm_answers", "model": "smollm2-135m-instruct-q4_1" if args.model == "smollm2" else args.model,
        "backend": f"llama.cpp (llama-cpp-python {llama_cpp.__version__}), greedy", "cpu": cpu_features(),
        "questions": len(questions), "right": right, "rate": round(right / len(questions), 3),
        "seconds": round(time.perf_counter() - start, 1),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
