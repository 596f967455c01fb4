"""Media the encoder tests generate themselves: videos with known scene cuts, tones (PyAV)."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

# (start second, RGB colour or "checker") for each scene of the standard test video
SCENES: tuple[tuple[float, object], ...] = (
    (0.0, (220, 30, 30)),
    (5.0, (30, 200, 40)),
    (11.0, (20, 40, 220)),
    (16.5, "checker"),
    (21.0, (240, 220, 20)),
)
CUTS = tuple(t for t, _ in SCENES[1:])
DURATION = 24.0


def _scene_frame(kind: object, n: int, width: int, height: int) -> np.ndarray:
    if kind == "checker":
        y, x = np.mgrid[0:height, 0:width]
        return np.where((((x // 8) + (y // 8)) % 2 == 0)[..., None], 255, 0).repeat(3, axis=2).astype(np.uint8)
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[:] = kind
    frame[: height // 8, : (n % width) + 1] = 128  # a small moving bar: frames differ slightly within a scene
    return frame


def write_video(
    path: Path,
    *,
    scenes: Sequence[tuple[float, object]] = SCENES,
    duration: float = DURATION,
    fps: int = 10,
    size: tuple[int, int] = (96, 64),
    audio: np.ndarray | None = None,
    codec: str = "libx264",
) -> Path:
    """Encode a video whose scenes switch at the given times; ``audio`` is float32 mono 16 kHz."""
    import av

    width, height = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        astream = None
        if audio is not None:
            astream = out.add_stream("aac", rate=16000, layout="mono")
        for n in range(round(duration * fps)):
            t = n / fps
            kind = [k for start, k in scenes if start <= t + 1e-9][-1]
            frame = av.VideoFrame.from_ndarray(_scene_frame(kind, n, width, height), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if astream is not None:
            pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
            step = 1024
            for i in range(0, pcm.size, step):
                frame = av.AudioFrame.from_ndarray(pcm[None, i : i + step], format="s16", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = 16000, i, Fraction(1, 16000)
                for packet in astream.encode(frame):
                    out.mux(packet)
            for packet in astream.encode():
                out.mux(packet)
    return path


def write_audio(path: Path, audio: np.ndarray, *, codec: str = "pcm_s16le", rate: int = 16000) -> Path:
    """Write float32 mono ``audio`` with PyAV (wav / flac / aac in mp4, by codec)."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        for i in range(0, pcm.size, 1024):
            frame = av.AudioFrame.from_ndarray(pcm[None, i : i + 1024], format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, i, Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def tone(seconds: float, *, freq: float = 440.0, rate: int = 16000, level: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_tiny_open_clip(path: Path) -> Path:
    """A tiny random-initialised open_clip CLIP saved as checkpoints are published (config JSON + weights)."""
    import json

    import open_clip
    import torch

    cfg = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }
    torch.manual_seed(0)
    model = open_clip.CLIP(**cfg)
    path.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path / "open_clip_pytorch_model.bin")
    preprocess = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
    (path / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": preprocess}))
    return path


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP byte-level BPE alphabet (Radford et al. 2019)."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    extra = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    return dict(zip(bs, map(chr, cs)))


def write_tiny_clap(path: Path) -> Path:
    """A tiny random transformers ClapModel + ClapProcessor (byte-level RoBERTa vocabulary, 16 kHz
    features, HTSAT with 2 small stages) saved with ``save_pretrained``: the adapter's mechanics
    without real CLAP weights, which do not exist offline here."""
    import json

    import torch
    import transformers

    path.mkdir(parents=True, exist_ok=True)
    vocab = {t: i for i, t in enumerate(("<s>", "<pad>", "</s>", "<unk>", "<mask>"))}  # RoBERTa's order: pad = 1
    for c in bytes_to_unicode().values():
        vocab[c] = len(vocab)
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = transformers.RobertaTokenizer(str(path / "vocab.json"), str(path / "merges.txt"))
    features = transformers.ClapFeatureExtractor(
        feature_size=16, sampling_rate=16000, hop_length=160, max_length_s=2, fft_window_size=400,
        truncation="rand_trunc", padding="repeatpad",
    )  # fmt: skip
    config = transformers.ClapConfig(
        text_config=dict(
            vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
            max_position_embeddings=80, pad_token_id=vocab["<pad>"], bos_token_id=vocab["<s>"],
            eos_token_id=vocab["</s>"], projection_dim=16,
        ),
        audio_config=dict(
            hidden_size=32, patch_embeds_hidden_size=16, depths=[1, 1], num_attention_heads=[2, 2], window_size=4,
            spec_size=64, num_mel_bins=16, patch_stride=[4, 4], projection_dim=16, enable_fusion=False,
        ),
        projection_dim=16,
    )  # fmt: skip
    torch.manual_seed(0)
    transformers.ClapModel(config).save_pretrained(path)
    transformers.ClapProcessor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(path)
    return path
