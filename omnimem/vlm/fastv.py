"""FastV visual-token pruning inside the language model (Chen et al., 2024, "An Image is Worth 1/2
Tokens After Layer 2: Plug-and-Play Inference Acceleration for Large Vision-Language Models").

The paper's observation (section 3): after the first couple of decoder layers, image tokens get
little attention, so most can be dropped for the rest of the network. FastV (section 4) runs layers
``0 .. K-1`` on the whole prompt, ranks the visual tokens by the attention that the last prompt
position pays them in layer ``K-1`` (averaged over heads), and keeps only the top ``1 - R`` share of
them for layers ``K .. L-1``; text tokens are never dropped. Layers below ``K`` keep every token in
their KV cache, layers from ``K`` on keep the pruned sequence, so the cache is ragged by design.

Implemented with forward hooks on transformers' own decoder layers (no copied modelling code): a hook
on layer ``K-1``'s attention reads its weights (eager attention during the prefill), and a pre-hook on
each later layer slices the hidden states, the rotary ``(cos, sin)`` and the attention mask to the
kept positions. The rotary tables are computed by the model for the full prompt before any layer
runs, so the kept tokens keep their original positions, 3-D M-RoPE ones on Qwen2-VL included; the
decode steps then continue at prompt length + ``rope_deltas`` (:func:`omnimem.vlm.kv.decode`).
Works on Qwen2-VL and LLaVA-family :class:`~omnimem.vlm.hf.HFGenerator` checkpoints (any model whose
``get_decoder()`` exposes ``layers`` and whose config names ``image_token_id``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from omnimem.errors import ConfigError
from omnimem.vlm.base import Generation, MessagesLike, check_generation_args
from omnimem.vlm.kv import KVStats, decode, eager_attention, language_model, reset_rope_deltas, rope_delta

__all__ = ["FastVConfig", "FastVPrefill", "prefill_fastv", "generate_fastv"]


@dataclass(frozen=True)
class FastVConfig:
    """FastV's knobs (paper section 4: ``K`` and ``R``; the paper's default is K=2, R=50%)."""

    layer: int = 2  # K: visual tokens are pruned after this many decoder layers (1 .. layers - 1)
    keep_ratio: float = 0.5  # 1 - R: share of the prompt's visual tokens kept for layers K and up
    query_window: int = 1  # last prompt positions whose layer K-1 attention ranks the visual tokens (FastV: 1)

    def __post_init__(self) -> None:
        if self.layer < 1:
            raise ConfigError(f"layer (K) must be >= 1: layers below K see every token, got {self.layer}")
        if not 0.0 < self.keep_ratio <= 1.0:
            raise ConfigError(f"keep_ratio must be in (0, 1], got {self.keep_ratio}")
        if self.query_window < 1:
            raise ConfigError(f"query_window must be >= 1, got {self.query_window}")


@dataclass(frozen=True)
class FastVPrefill:
    """What a FastV prefill leaves for decoding."""

    logits: Any  # (1, vocab) float: the next-token logits of the last prompt position
    cache: Any  # DynamicCache: layers < K hold all n prompt positions, layers >= K only the kept ones
    kept: Any  # long (n_kept,): prompt positions that layers >= K still see, ascending
    stats: KVStats  # visual tokens before / after pruning


def _decoder_layers(model: Any) -> Any:
    layers = getattr(language_model(model), "layers", None)
    if layers is None:
        raise ConfigError(f"{type(model).__name__} exposes no decoder layers (get_decoder().layers); FastV needs them")
    return layers


def _visual_ids(config: Any) -> list[int]:
    ids = [getattr(config, name, None) for name in ("image_token_id", "video_token_id")]
    ids = [i for i in ids if i is not None]
    if not ids:
        raise ConfigError(f"model_type={config.model_type!r} names no image_token_id; FastV needs a VLM checkpoint")
    return ids


def _slice(value: Any, index: Any, n: int, dims: Sequence[int]) -> Any:
    """``value`` restricted to ``index`` along each of ``dims`` that still has the full length ``n``."""
    for dim in dims:
        if value.shape[dim] == n:
            value = value.index_select(dim, index)
    return value


def prefill_fastv(model: Any, inputs: dict[str, Any], config: FastVConfig = FastVConfig()) -> FastVPrefill:
    """Run the prompt ``inputs`` (from ``HFGenerator.prepare``) through ``model`` with FastV pruning.

    In the returned cache, layers ``< K`` hold all ``n`` prompt positions and layers ``>= K`` hold
    ``n - (stats.before - stats.after)``; ``stats`` counts the visual tokens. Batch size 1.
    """
    import torch

    layers = _decoder_layers(model)
    if config.layer >= len(layers):
        raise ConfigError(
            f"FastV layer K={config.layer} must be below the model's {len(layers)} decoder layers; lower FastVConfig.layer"
        )
    ids = inputs["input_ids"]
    if ids.shape[0] != 1:
        raise ConfigError(f"FastV here prunes one prompt at a time, got a batch of {ids.shape[0]}")
    n = int(ids.shape[1])
    visual = torch.isin(ids[0], torch.tensor(_visual_ids(model.config), device=ids.device))
    total = int(visual.sum())
    if total == 0:
        raise ConfigError("the prompt holds no visual tokens to prune; pass images= or generate without FastV")
    k = max(1, math.ceil(config.keep_ratio * total - 1e-9))
    state: dict[str, Any] = {}

    def rank(module: Any, args: Any, output: Any) -> None:  # after layer K-1's attention
        weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
        if weights is None:
            raise ConfigError("the model returned no attention weights; load it with attn_implementation='eager'")
        # attention of the last query_window prompt positions, mean over heads and queries: (n,)
        scores = weights[0, :, -config.query_window :, :].float().mean(dim=(0, 1))
        top = scores.masked_fill(~visual, -math.inf).topk(k).indices
        keep = ~visual
        keep[top] = True
        state["index"] = keep.nonzero().squeeze(-1)

    def prune(module: Any, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:  # before layers >= K
        index = state["index"]
        if args:
            args = (_slice(args[0], index, n, [1]), *args[1:])
        else:
            kwargs["hidden_states"] = _slice(kwargs["hidden_states"], index, n, [1])
        if kwargs.get("position_embeddings") is not None:  # (cos, sin), each (b, n, head_dim)
            kwargs["position_embeddings"] = tuple(_slice(t, index, n, [1]) for t in kwargs["position_embeddings"])
        mask = kwargs.get("attention_mask")
        if mask is not None:
            if not isinstance(mask, torch.Tensor):
                raise ConfigError(
                    f"FastV slices tensor attention masks, got {type(mask).__name__}; use eager attention"
                )
            kwargs["attention_mask"] = _slice(mask, index, n, [-2, -1])  # (b, 1, n, n)
        if isinstance(kwargs.get("position_ids"), torch.Tensor):
            kwargs["position_ids"] = _slice(kwargs["position_ids"], index, n, [-1])
        return args, kwargs

    handles = [layers[config.layer - 1].self_attn.register_forward_hook(rank)]
    handles += [layer.register_forward_pre_hook(prune, with_kwargs=True) for layer in layers[config.layer :]]
    reset_rope_deltas(model)
    try:
        with torch.inference_mode(), eager_attention(language_model(model)):
            out = model(**inputs, use_cache=True)
    finally:
        for handle in handles:
            handle.remove()
    return FastVPrefill(out.logits[:, -1], out.past_key_values, state["index"], KVStats(before=total, after=k))


def generate_fastv(
    generator: Any,
    messages: MessagesLike,
    images: Sequence[Any],
    *,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    config: FastVConfig = FastVConfig(),
) -> tuple[Generation, KVStats]:
    """Generate on a VLM :class:`~omnimem.vlm.hf.HFGenerator` with FastV: after decoder layer
    ``config.layer`` only the ``keep_ratio`` most-attended visual tokens remain. ``KVStats`` counts
    visual tokens; ``Generation.tokens_in`` is the full prompt (layers below K see all of it)."""
    import torch

    check_generation_args(max_new_tokens, temperature)
    if not images:
        raise ConfigError("pass at least one image to prune")
    inputs = generator.prepare(messages, images)
    n = int(inputs["input_ids"].shape[1])
    start = time.perf_counter()
    prefill = prefill_fastv(generator.model, inputs, config)
    with torch.inference_mode():
        tokens = decode(generator, prefill.logits, prefill.cache, position=n + rope_delta(generator.model),
                        max_new_tokens=max_new_tokens, temperature=temperature)  # fmt: skip
    text = generator.tokenizer.decode(tokens, skip_special_tokens=True).strip()
    generation = Generation(text, tokens_in=n, tokens_out=len(tokens), latency_s=time.perf_counter() - start)
    return generation, prefill.stats
