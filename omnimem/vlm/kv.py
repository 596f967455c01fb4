"""Inside-the-model compression for the transformers backend (:class:`~omnimem.vlm.hf.HFGenerator`).

- :func:`generate_snapkv` — SnapKV (Li et al., 2024, "SnapKV: LLM Knows What You Are Looking for
  Before Generation"): after the prefill, the attention of the last ``window`` prompt tokens (the
  observation window) votes for prefix positions, votes are pooled over a small kernel so neighbours
  stay together, and each layer and KV head keeps only its top positions plus the window. Decoding
  then runs on the smaller cache with the original rotary positions: prompt length + the M-RoPE
  delta for Qwen2-VL (its image tokens advance the position by ``max(h, w)`` merged patches, not by
  their count), whatever the cache's shorter length. Implemented on transformers' own
  ``DynamicCache`` (kvpress would pin transformers < 5.3).
- FastV (Chen et al., 2024), pruning visual tokens inside the LM after layer K, is in
  :mod:`omnimem.vlm.fastv`; it shares :func:`decode` with SnapKV.
- :func:`generate_pruned_llava` — training-free visual-token pruning before the language model in
  the [CLS]-attention style (FasterVLM, Zhang et al., 2024; FastV, Chen et al., 2024, prunes the same
  tokens later, inside the LM): the vision tower's [CLS] attention ranks the patch tokens and only the
  top ``keep_ratio`` reach the LLM. LLaVA family (a CLIP-style tower with a [CLS] token).
- :class:`PrefixCache` — the KV cache of a fixed chat prefix (instructions + memory evidence) computed
  once and reused across chat turns, so each turn pays only for its new tokens.

Attention weights are needed for the first two, so the language model (not a VLM's vision tower)
switches to eager attention for the prefill (and back); this materialises ``(heads, n, n)`` for one
layer at a time (SnapKV keeps only the observation window's rows of each): meant for prompts of a
few thousand tokens, as in the papers' CPU-scale settings here.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from omnimem.errors import ConfigError
from omnimem.vlm.base import Generation, MessagesLike, as_messages, check_generation_args

__all__ = [
    "SnapKVConfig",
    "KVStats",
    "generate_snapkv",
    "generate_pruned_llava",
    "PrefixCache",
    "decode",
    "eager_attention",
    "language_model",
    "rope_delta",
    "reset_rope_deltas",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SnapKVConfig:
    """SnapKV's knobs (paper section 4)."""

    keep_ratio: float = 0.5  # share of the prompt's KV entries kept per layer and head, window included
    window: int = 8  # observation window: the last prompt tokens whose attention votes
    kernel: int = 5  # max-pooling width over the votes (odd), keeps a chosen token's neighbours

    def __post_init__(self) -> None:
        if not 0.0 < self.keep_ratio <= 1.0:
            raise ConfigError(f"keep_ratio must be in (0, 1], got {self.keep_ratio}")
        if self.window < 1:
            raise ConfigError(f"window must be >= 1, got {self.window}")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ConfigError(f"kernel must be a positive odd number, got {self.kernel}")


@dataclass(frozen=True)
class KVStats:
    """How much a compression saved."""

    before: int  # tokens (prompt KV positions, or visual tokens) before compression
    after: int  # tokens after compression

    @property
    def ratio(self) -> float:
        return self.after / self.before if self.before else 1.0


@contextlib.contextmanager
def eager_attention(model: Any) -> Iterator[None]:
    """Eager attention in ``model`` (a whole model or a sub-model) for the duration (sdpa returns no
    attention weights). Pass :func:`language_model` to leave a VLM's vision tower on its fast kernel."""
    before = getattr(model.config, "_attn_implementation", None)
    if before == "eager" or not hasattr(model, "set_attn_implementation"):
        yield
        return
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(before)


def language_model(model: Any) -> Any:
    """The decoder stack of a causal LM or VLM (``model.get_decoder()``), else ``model`` itself."""
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    return decoder if hasattr(decoder, "set_attn_implementation") else model


def _eos_ids(generator: Any) -> set[int]:
    ids = getattr(getattr(generator.model, "generation_config", None), "eos_token_id", None)
    ids = set(ids if isinstance(ids, (list, tuple)) else [ids] if ids is not None else [])
    if generator.tokenizer.eos_token_id is not None:
        ids.add(generator.tokenizer.eos_token_id)
    return ids


def _sample(logits: Any, temperature: float) -> Any:
    import torch

    if temperature <= 0:
        return logits.argmax(-1)
    return torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1).squeeze(-1)


def reset_rope_deltas(model: Any) -> None:
    """Forget the M-RoPE delta of an earlier prompt (Qwen2-VL keeps it on ``model.model``); the
    prefill then computes this prompt's own, or none for a text-only prompt."""
    inner = getattr(model, "model", None)
    if getattr(inner, "rope_deltas", None) is not None:
        inner.rope_deltas = None


def rope_delta(model: Any) -> int:
    """The M-RoPE offset the last prefill left on a Qwen2-VL (``model.model.rope_deltas``): a text
    token at index ``i`` after the images sits at rotary position ``i + delta`` on all three axes
    (``delta <= 0``, images take ``max(h, w)`` positions for ``h * w`` tokens). 0 for 1-D RoPE models."""
    delta = getattr(getattr(model, "model", None), "rope_deltas", None)
    return int(delta.reshape(-1)[0]) if delta is not None else 0


def decode(
    generator: Any, logits: Any, cache: Any, *, position: int, max_new_tokens: int, temperature: float
) -> list[int]:
    """Decode from a prefilled, possibly compressed cache; returns the new token ids.

    ``logits``: ``(1, vocab)`` of the last prompt token. ``position``: the rotary position of the
    first new token (prompt length + :func:`rope_delta`), independent of the cache's length, which
    compression shortened (and which may differ per layer, as after FastV). No attention mask is
    passed: one query attends every cached entry of its layer.
    """
    import torch

    model, tokens, eos = generator.model, [], _eos_ids(generator)
    for step in range(max_new_tokens):
        token = _sample(logits, temperature)
        tokens.append(int(token))
        if tokens[-1] in eos or step + 1 == max_new_tokens:
            break
        out = model(
            input_ids=token.view(1, 1),
            past_key_values=cache,
            position_ids=torch.tensor([[position + step]], device=logits.device),  # 2-D: same on M-RoPE's 3 axes
            use_cache=True,
        )
        logits = out.logits[:, -1]
    return tokens


def snapkv_indices(attentions: Sequence[Any], keep: int, window: int, kernel: int, n_kv_heads: int) -> list[Any]:
    """Per layer, the prompt positions each KV head keeps: ``long (b, n_kv_heads, keep)``, sorted.

    ``attentions[l]``: ``(b, heads, q, n)`` prefill attention, ``q >= window`` (the full ``n`` rows, or
    only the last ones: only the observation window's rows are read). Votes = attention of the last
    ``window`` queries to the first ``n - window`` keys, summed over the window, max-pooled over
    ``kernel``, averaged over the query heads that share a KV head (GQA); top ``keep - window``
    positions plus the whole window.
    """
    import torch
    import torch.nn.functional as F

    out = []
    for attn in attentions:
        b, heads, _, n = attn.shape
        prefix = n - window
        votes = attn[:, :, -window:, :prefix].float().sum(dim=2)  # (b, heads, prefix)
        votes = F.max_pool1d(votes, kernel_size=kernel, stride=1, padding=kernel // 2)
        votes = votes.view(b, n_kv_heads, heads // n_kv_heads, prefix).mean(dim=2)
        top = votes.topk(keep - window, dim=-1).indices
        tail = torch.arange(prefix, n, device=attn.device).expand(b, n_kv_heads, window)
        out.append(torch.cat([top.sort(dim=-1).values, tail], dim=-1))
    return out


class _AttentionRecorder:
    """Forward hooks keeping the last ``rows`` query rows of each decoder layer's attention weights,
    ``(b, heads, rows, n)``, in layer order; a copy, so the full ``(n, n)`` map is freed layer by layer."""

    def __init__(self, model: Any, rows: int) -> None:
        self.rows = rows
        layers = getattr(language_model(model), "layers", None)
        if layers is None:
            raise ConfigError(
                f"{type(model).__name__} exposes no decoder layers (get_decoder().layers); SnapKV needs them"
            )
        self.weights: list[Any] = []
        self.handles = [layer.self_attn.register_forward_hook(self._keep) for layer in layers]

    def _keep(self, module: Any, args: Any, output: Any) -> None:
        weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
        self.weights.append(None if weights is None else weights[:, :, -self.rows :].clone())

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def generate_snapkv(
    generator: Any,
    messages: MessagesLike,
    *,
    images: Sequence[Any] = (),
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    config: SnapKVConfig = SnapKVConfig(),
) -> tuple[Generation, KVStats]:
    """Generate with a SnapKV-compressed prompt cache on an :class:`~omnimem.vlm.hf.HFGenerator`.

    1-D RoPE models (Llama/Qwen2/Mistral-style LLMs, LLaVA) and Qwen2-VL with images (M-RoPE: the
    decode positions continue from the prompt length plus ``rope_deltas``). ``KVStats`` counts the
    prompt's KV positions per layer and head before and after.
    """
    import torch

    check_generation_args(max_new_tokens, temperature)
    model = generator.model
    inputs = generator.prepare(messages, images)
    n = int(inputs["input_ids"].shape[1])
    keep = max(config.window + 1, math.ceil(config.keep_ratio * n))
    start = time.perf_counter()
    reset_rope_deltas(model)
    with torch.inference_mode():
        attentions = _AttentionRecorder(model, config.window) if keep < n else None  # hooks, not output_attentions:
        try:  # that flag would also reach (and warn from) a VLM's sdpa vision tower
            with eager_attention(language_model(model)):
                out = model(**inputs, use_cache=True)
        finally:
            if attentions is not None:
                attentions.remove()
        cache = out.past_key_values
        if attentions is not None:
            if len(attentions.weights) != len(cache.layers) or any(a is None for a in attentions.weights):
                raise ConfigError("the model returned no attention weights; load it with attn_implementation='eager'")
            n_kv = cache.layers[0].keys.shape[1]
            for layer, index in zip(
                cache.layers, snapkv_indices(attentions.weights, keep, config.window, config.kernel, n_kv)
            ):
                gather = index.unsqueeze(-1).expand(-1, -1, -1, layer.keys.shape[-1])
                layer.keys = layer.keys.gather(2, gather).contiguous()
                layer.values = layer.values.gather(2, gather).contiguous()
        kept = cache.get_seq_length()
        tokens = decode(generator, out.logits[:, -1], cache, position=n + rope_delta(model),
                        max_new_tokens=max_new_tokens, temperature=temperature)  # fmt: skip
    text = generator.tokenizer.decode(tokens, skip_special_tokens=True).strip()
    generation = Generation(text, tokens_in=n, tokens_out=len(tokens), latency_s=time.perf_counter() - start)
    return generation, KVStats(before=n, after=kept)


def generate_pruned_llava(
    generator: Any,
    messages: MessagesLike,
    images: Sequence[Any],
    *,
    keep_ratio: float = 0.25,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
) -> tuple[Generation, KVStats]:
    """Generate on a LLaVA-family :class:`~omnimem.vlm.hf.HFGenerator` with only the ``keep_ratio``
    patch tokens per image that its vision tower's [CLS] token attends to most (FasterVLM)."""
    import torch

    check_generation_args(max_new_tokens, temperature)
    if not 0.0 < keep_ratio <= 1.0:
        raise ConfigError(f"keep_ratio must be in (0, 1], got {keep_ratio}")
    model, cfg = generator.model, generator.model.config
    inner = getattr(model, "model", model)
    if cfg.model_type != "llava" or not hasattr(inner, "vision_tower"):
        raise ConfigError(f"[CLS]-attention pruning needs a LLaVA-family model, got model_type={cfg.model_type!r}")
    layer = cfg.vision_feature_layer
    if not isinstance(layer, int):
        raise ConfigError("[CLS]-attention pruning needs a single vision_feature_layer")
    if not images:
        raise ConfigError("pass at least one image to prune")
    inputs = generator.prepare(messages, images)
    start = time.perf_counter()
    with torch.inference_mode():
        with eager_attention(inner.vision_tower):
            vision = inner.vision_tower(inputs["pixel_values"], output_attentions=True, output_hidden_states=True)
        hidden = vision.hidden_states[layer]  # (images, 1 + patches, d)
        cls_attention = vision.attentions[layer if layer < 0 else layer - 1][:, :, 0, 1:].mean(dim=1)
        patches = hidden[:, 1:] if cfg.vision_feature_select_strategy == "default" else hidden
        if cfg.vision_feature_select_strategy != "default":  # "full": the [CLS] token itself is always kept
            cls_attention = torch.cat([torch.full_like(cls_attention[:, :1], math.inf), cls_attention], dim=1)
        total = patches.shape[1]
        k = max(1, round(keep_ratio * total))
        index = cls_attention.topk(k, dim=-1).indices.sort(dim=-1).values
        kept = patches.gather(1, index.unsqueeze(-1).expand(-1, -1, patches.shape[-1]))
        features = inner.multi_modal_projector(kept)  # (images, k, hidden)

        ids = inputs["input_ids"][0]
        is_image = ids == cfg.image_token_id
        if int(is_image.sum()) != total * len(images):
            raise ConfigError(
                "the prompt's image tokens do not match the vision tower's patches; is this LLaVA-1.5 style?"
            )
        rank = torch.cumsum(is_image.long(), 0) - 1  # running index over image tokens
        keep_mask = ~is_image | (rank % total < k)  # the first k slots of every image block
        new_ids = ids[keep_mask].unsqueeze(0)
        embeds = model.get_input_embeddings()(new_ids)
        embeds[new_ids == cfg.image_token_id] = features.reshape(-1, features.shape[-1]).to(embeds.dtype)
        out = model.generate(
            inputs_embeds=embeds,
            attention_mask=torch.ones_like(new_ids),
            **generator.generate_kwargs(max_new_tokens, temperature),
        )
    text = generator.tokenizer.decode(out[0], skip_special_tokens=True).strip()
    generation = Generation(text, tokens_in=int(new_ids.shape[1]), tokens_out=int(out.shape[1]),
                            latency_s=time.perf_counter() - start)  # fmt: skip
    return generation, KVStats(before=total * len(images), after=k * len(images))


class PrefixCache:
    """The KV cache of a fixed chat prefix, reused by every later turn that starts with it.

    ``prefix`` is the opening of the conversation (the system rules and the memory's evidence); a
    turn's messages must start with exactly those messages. Each call copies the cache, so turns do
    not leak into each other. Text only. (llama.cpp reuses the longest common prompt prefix by
    itself; :class:`~omnimem.vlm.llamacpp.LlamaCppGenerator` needs nothing extra.)
    """

    def __init__(self, generator: Any, prefix: MessagesLike) -> None:
        import torch

        self.generator = generator
        self.prefix = as_messages(prefix)
        owner = generator.processor if getattr(generator.processor, "chat_template", None) else generator.tokenizer
        text = owner.apply_chat_template([m.to_dict() for m in self.prefix], tokenize=False)
        self.ids = generator.tokenizer([text], add_special_tokens=False, return_tensors="pt")["input_ids"]
        self.ids = self.ids.to(generator.device)
        with torch.inference_mode():
            self.cache = generator.model(input_ids=self.ids, use_cache=True).past_key_values
        self.hits = 0  # turns that reused the cache

    @property
    def tokens(self) -> int:
        return int(self.ids.shape[1])

    def generate(self, messages: MessagesLike, *, max_new_tokens: int = 256, temperature: float = 0.0) -> Generation:
        """Answer ``messages`` (the prefix + new turns), computing only the new turns' KV."""
        import torch

        check_generation_args(max_new_tokens, temperature)
        chat = as_messages(messages)
        inputs = self.generator.prepare(chat, ())
        ids = inputs["input_ids"]
        usable = chat[: len(self.prefix)] == self.prefix and torch.equal(ids[:, : self.tokens], self.ids)
        if not usable or ids.shape[1] <= self.tokens:
            log.info("prompt does not extend the cached prefix; generating without it")
            return self.generator.generate(chat, max_new_tokens=max_new_tokens, temperature=temperature)
        start = time.perf_counter()
        with torch.inference_mode():
            out = self.generator.model.generate(**inputs, past_key_values=copy.deepcopy(self.cache),
                                                **self.generator.generate_kwargs(max_new_tokens, temperature))  # fmt: skip
        self.hits += 1
        new = out[0, ids.shape[1] :]
        text = self.generator.tokenizer.decode(new, skip_special_tokens=True).strip()
        return Generation(text, tokens_in=int(ids.shape[1]), tokens_out=int(new.shape[0]),
                          latency_s=time.perf_counter() - start)  # fmt: skip
