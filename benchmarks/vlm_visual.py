"""Full vs compressed visual context on a tiny VLM (random-initialised Qwen2-VL, CPU), multi-frame prompts.

Run: .venv/bin/python benchmarks/vlm_visual.py [--quick]

No VLM weights exist offline, so the model is a 4-layer Qwen2-VL built from a config (as in
tests/vlm), saved to a temporary folder and loaded with ``HFGenerator.from_pretrained`` like a
download; its processor sends frames at up to 448 x 448 px. Prompts: several COCO images from the
shared data (``omnimem.data.data_dir()/coco_mini``) as the frames of one question, plus one
near-duplicate frame (as consecutive video frames are); the question quotes one frame's caption and
each frame's retrieval score is the word overlap of its caption with the question (a stand-in for
CLIP). The model is random: answers mean nothing, so this measures cost, not quality (the SmolLM2
half, benchmarks/vlm_compress.py, measures F1).

Settings (one JSON line each, with ``*_ratio`` = setting / full):
- ``full``: every frame at full resolution, plain ``generate``;
- ``compressed``: ``compress_context`` frame selection + de-duplication + visual budget
  (``--budget`` tokens, frames downscaled to 224 x 224 px, at most 4);
- ``fastv``: full prompt, FastV pruning of half the visual tokens after layer 2 (of 4);
- ``snapkv``: full prompt, SnapKV keeping half of the prompt's KV cache;
- ``compressed+fastv``: both.

``prompt_tokens`` counts text + visual tokens at the LM's input; ``lm_tokens`` what layers after
the pruning point still see (FastV) or the KV entries kept per layer (SnapKV). Timing comes from a
forward hook on the model: ``ttft_s`` is from the call to the end of the first forward
(compress_context for the compressed settings, preprocessing, vision tower, prefill, pruning); ``tokens_per_s`` is decode forwards per
second after it. Each prompt runs ``--repeats`` times and the fastest run counts (this CPU is
shared; the load average is printed). Peak memory: each setting
runs in its own subprocess; after loading the model and one warm-up call the kernel's high-water
mark is reset (``/proc/self/clear_refs``), so ``peak_rss_mb`` is the peak resident set during the
measured calls (model and torch runtime included), read from ``VmHWM``; ``process_peak_rss_mb`` is
``ru_maxrss`` of the whole worker. FastV and SnapKV need attention weights, so their prefill runs in
eager attention (``(heads, n, n)`` per layer), which costs memory that sdpa does not.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ("full", "compressed", "fastv", "snapkv", "compressed+fastv")


def reset_peak_rss() -> bool:
    """Reset this process's peak-RSS high-water mark (Linux >= 4.0); False where not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident set since the last reset (``VmHWM``), else since the start (``ru_maxrss``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prompts(n_prompts: int, n_frames: int) -> list[dict]:
    """Questions over COCO frames: ``{"question", "frames": [{"id", "path", "caption", "score"}]}``."""
    from omnimem.data import data_dir

    root = data_dir()
    coco = root / "coco_mini" if root else None
    if coco is None or not (coco / "captions_train2017.json").is_file():
        return []
    meta = json.loads((coco / "captions_train2017.json").read_text())
    captions: dict[int, str] = {}
    for a in meta["annotations"]:
        captions.setdefault(a["image_id"], a["caption"].strip())
    images = [(coco / "images" / im["file_name"], captions.get(im["id"], "")) for im in meta["images"]]
    images = [(p, c) for p, c in sorted(images) if p.is_file() and c]
    out = []
    for q in range(n_prompts):
        chosen = images[q * (n_frames - 1) : (q + 1) * (n_frames - 1)]
        if len(chosen) < n_frames - 1:
            break
        chosen.append(chosen[0])  # a near-duplicate frame, as consecutive video frames are
        target = chosen[len(chosen) // 2][1]
        question = f"Which frame shows this: {target.rstrip('.')}? Cite the frame."
        words = set(re.findall(r"\w+", question.lower()))
        frames = [{"id": f"F{i + 1}", "path": str(p), "caption": c,
                   "score": len(words & set(re.findall(r"\w+", c.lower()))) / max(len(words), 1)}
                  for i, (p, c) in enumerate(chosen)]  # fmt: skip
        out.append({"question": question, "frames": frames})
    return out


def worker(setting: str, model_dir: str, spec: list[dict], budget: int, max_new_tokens: int, repeats: int) -> dict:
    """Run one setting over every prompt in this process; returns its mean figures."""
    from omnimem.vlm import Evidence, answer_messages, compress_context
    from omnimem.vlm.compress import CompressionConfig
    from omnimem.vlm.fastv import FastVConfig, generate_fastv
    from omnimem.vlm.hf import HFGenerator
    from omnimem.vlm.kv import SnapKVConfig, generate_snapkv

    gen = HFGenerator.from_pretrained(model_dir, device="cpu", dtype="float32")
    fastv = FastVConfig(layer=2, keep_ratio=0.5)
    snapkv = SnapKVConfig(keep_ratio=0.5)
    compression = CompressionConfig(token_budget=budget, family="qwen2-vl", frame_max_pixels=224 * 224, max_frames=4)

    def call(messages, images, max_new):  # -> (Generation, tokens the later layers / the cache keep)
        if setting.endswith("fastv"):
            out, stats = generate_fastv(gen, messages, images, max_new_tokens=max_new, config=fastv)
            return out, out.tokens_in - (stats.before - stats.after)
        if setting == "snapkv":
            out, stats = generate_snapkv(gen, messages, images=images, max_new_tokens=max_new, config=snapkv)
            return out, stats.after
        out = gen.generate(messages, images=images, max_new_tokens=max_new)
        return out, out.tokens_in

    def inputs(item):
        evidence = [Evidence(f["id"], "", modality="frame", image=f["path"], score=f["score"]) for f in item["frames"]]
        if setting.startswith("compressed"):
            ctx = compress_context(item["question"], evidence, gen.count_tokens, compression)
            return ctx.messages, ctx.images
        return answer_messages(item["question"], evidence), [f["path"] for f in item["frames"]]

    stamps: list[float] = []  # end of every top-level forward: the prefill, then one per decoded token
    gen.model.register_forward_hook(lambda module, args, output: stamps.append(time.perf_counter()))
    call(*inputs(spec[0]), 2)  # warm-up: first-call allocations and lazy initialisation are not measured
    reset = reset_peak_rss()
    rows = []
    for item in spec:
        runs = []
        for _ in range(repeats):
            stamps.clear()
            start = time.perf_counter()
            messages, images = inputs(item)  # compress_context's own time counts towards the first token
            out, lm_tokens = call(messages, images, max_new_tokens)
            decoded = len(stamps) - 1  # forwards after the prefill, each yielding one more token
            rate = decoded / (stamps[-1] - stamps[0]) if decoded > 0 else 0.0
            runs.append((stamps[0] - start, rate))
        ttft, rate = min(r[0] for r in runs), max(r[1] for r in runs)  # least-disturbed run of a shared CPU
        rows.append((out.tokens_in, lm_tokens, len(images), ttft, rate))
    tokens, lm_tokens, frames, ttft, rate = zip(*rows)
    return {"prompt_tokens": round(statistics.mean(tokens), 1), "lm_tokens": round(statistics.mean(lm_tokens), 1),
            "frames": round(statistics.mean(frames), 2), "ttft_s": round(statistics.mean(ttft), 4),
            "tokens_per_s": round(statistics.mean(rate), 1), "peak_rss_mb": round(peak_rss_mb(), 1),
            "peak_reset": reset,
            "process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 prompts of 5 frames, 8 new tokens, 2 repeats")
    parser.add_argument("--prompts", type=int, default=5)
    parser.add_argument("--frames", type=int, default=8, help="frames per prompt, one a near-duplicate")
    parser.add_argument("--budget", type=int, default=1024, help="compressed setting's whole-prompt token budget")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3, help="runs per prompt; the fastest counts (shared CPU)")
    parser.add_argument("--worker", choices=SETTINGS, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.prompts, args.frames, args.max_new_tokens, args.repeats = 2, 5, 8, 2
    if args.worker:
        spec = json.loads(Path(args.spec).read_text())
        print(json.dumps(worker(args.worker, args.model_dir, spec, args.budget, args.max_new_tokens, args.repeats)))
        return

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    spec = prompts(args.prompts, args.frames)
    if not spec:
        print(json.dumps({"figure": "vlm_visual", "skipped": "no COCO images (shared data coco_mini/ absent)"}))
        return
    try:
        import transformers  # noqa: F401
    except ImportError:
        print(json.dumps({"figure": "vlm_visual", "skipped": "transformers is not installed"}))
        return
    sys.path.insert(0, str(ROOT / "tests" / "vlm"))
    from vlm_tiny_models import build_tiny_qwen2vl

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_qwen2vl(Path(tmp) / "qwen2vl", layers=4, max_pixels=448 * 448)
        spec_file = Path(tmp) / "spec.json"
        spec_file.write_text(json.dumps(spec))
        full: dict | None = None
        for setting in SETTINGS:
            start = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, __file__, "--worker", setting, "--model-dir", str(model_dir), "--spec", str(spec_file),
                 "--budget", str(args.budget), "--max-new-tokens", str(args.max_new_tokens),
                 "--repeats", str(args.repeats)],
                capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
            )  # fmt: skip
            if proc.returncode != 0:
                raise SystemExit(f"setting {setting} failed:\n{proc.stderr[-3000:]}")
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            full = full or row
            ratios = {f"{k}_ratio": round(row[k] / full[k], 3) if full[k] else None
                      for k in ("prompt_tokens", "lm_tokens", "ttft_s", "tokens_per_s", "peak_rss_mb")}  # fmt: skip
            print(json.dumps({"figure": "vlm_visual", "model": "tiny-qwen2-vl-4l (random)", "setting": setting,
                              "prompts": len(spec), "frames_given": args.frames, **row, **ratios,
                              "load_avg_1m": round(os.getloadavg()[0], 2),
                              "wall_s": round(time.perf_counter() - start, 1)}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
