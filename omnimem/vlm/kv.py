"""Inside-the-model compression for the transformers backend (:class:`~omnimem.vlm.hf.HFGenerator`).

- :func:`generate_snapkv` — SnapKV (Li et al., 2024, "SnapKV: LLM Knows What You Are Looking for
  Before Generation"): after the prefill, the attention of the last ``window`` prompt tokens (the
  observation window) votes for prefix positions, votes are pooled over a small kernel so neighbours
  stay together, and each layer and KV head keeps only its top positions plus the window. Decoding
  then runs on the smaller cache with the original rotary positions. Implemented on transformers'
  own ``DynamicCache`` (kvpress would pin transformers < 5.3).
- :func:`generate_pruned_llava` — training-free visual-token pruning before the language model in
  the [CLS]-attention style (FasterVLM, Zhang et al., 2024; FastV, Chen et al., 2024, prunes the same
  tokens later, inside the LM): the vision tower's [CLS] attention ranks the patch tokens and only the
  top ``keep_ratio`` reach the LLM. LLaVA family (a CLIP-style tower with a [CLS] token).
- :class:`PrefixCache` — the KV cache of a fixed chat prefix (instructions + memory evidence) computed
  once and reused across chat turns, so each turn pays only for its new tokens.

Attention weights are needed for the first two, so the model switches to eager attention for the
prefill (and back); this materialises ``(heads, n, n)`` per layer: meant for prompts of a few
thousand tokens, as in the papers' CPU-scale settings here.
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

__all__ = ["SnapKVConfig", "KVStats", "generate_snapkv", "generate_pruned_llava", "PrefixCache"]

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
def _eager(model: Any) -> Iterator[None]:
    """Eager attention for the duration (sdpa returns no attention weights)."""
    before = getattr(model.config, "_attn_implementation", None)
    if before == "eager" or not hasattr(model, "set_attn_implementation"):
        yield
        return
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(before)


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


def snapkv_indices(attentions: Sequence[Any], keep: int, window: int, kernel: int, n_kv_heads: int) -> list[Any]:
    """Per layer, the prompt positions each KV head keeps: ``long (b, n_kv_heads, keep)``, sorted.

    ``attentions[l]``: ``(b, heads, n, n)`` prefill attention. Votes = attention of the last
    ``window`` queries to the first ``n - window`` keys, summed over the window, max-pooled over
    ``kernel``, averaged over the query heads that share a KV head (GQA); top ``keep - window``
    positions plus the whole window.
    """
    import torch
    import torch.nn.functional as F

    out = []
    for attn in attentions:
        b, heads, n, _ = attn.shape
        prefix = n - window
        votes = attn[:, :, -window:, :prefix].float().sum(dim=2)  # (b, heads, prefix)
        votes = F.max_pool1d(votes, kernel_size=kernel, stride=1, padding=kernel // 2)
        votes = votes.view(b, n_kv_heads, heads // n_kv_heads, prefix).mean(dim=2)
        top = votes.topk(keep - window, dim=-1).indices
        tail = torch.arange(prefix, n, device=attn.device).expand(b, n_kv_heads, window)
        out.append(torch.cat([top.sort(dim=-1).values, tail], dim=-1))
    return out


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

    Works for models with 1-D rotary positions (Llama/Qwen2/Mistral-style LLMs and LLaVA); Qwen2-VL's
    M-RoPE with images raises :class:`ConfigError`.
    """
    import torch

    check_generation_args(max_new_tokens, temperature)
    model = generator.model
    inputs = generator._inputs(messages, images)
    if "image_grid_thw" in inputs or "video_grid_thw" in inputs:
        raise ConfigError(
            "SnapKV decoding here assumes 1-D rotary positions; M-RoPE models (Qwen2-VL) are not supported yet"
        )
    n = int(inputs["input_ids"].shape[1])
    keep = max(config.window + 1, math.ceil(config.keep_ratio * n))
    start = time.perf_counter()
    with torch.inference_mode():
        with _eager(model):
            out = model(**inputs, use_cache=True, output_attentions=keep < n)
        cache = out.past_key_values
        if keep < n:
            n_kv = cache.layers[0].keys.shape[1]
            for layer, index in zip(
                cache.layers, snapkv_indices(out.attentions, keep, config.window, config.kernel, n_kv)
            ):
                gather = index.unsqueeze(-1).expand(-1, -1, -1, layer.keys.shape[-1])
                layer.keys = layer.keys.gather(2, gather).contiguous()
                layer.values = layer.values.gather(2, gather).contiguous()
        kept = cache.get_seq_length()
        logits, tokens, eos = out.logits[:, -1], [], _eos_ids(generator)
        device = logits.device
        for step in range(max_new_tokens):
            token = _sample(logits, temperature)
            tokens.append(int(token))
            if tokens[-1] in eos or step + 1 == max_new_tokens:
                break
            out = model(
                input_ids=token.view(1, 1),
                past_key_values=cache,
                position_ids=torch.tensor([[n + step]], device=device),  # the original rotary position
                cache_position=torch.tensor([kept + step], device=device),  # the slot in the smaller cache
                attention_mask=torch.ones(1, kept + step + 1, dtype=torch.long, device=device),
                use_cache=True,
            )
            logits = out.logits[:, -1]
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
    inputs = generator._inputs(messages, images)
    start = time.perf_counter()
    with torch.inference_mode():
        with _eager(model):
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
            **generator._generate_kwargs(max_new_tokens, temperature),
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
        inputs = self.generator._inputs(chat, ())
        ids = inputs["input_ids"]
        usable = chat[: len(self.prefix)] == self.prefix and torch.equal(ids[:, : self.tokens], self.ids)
        if not usable or ids.shape[1] <= self.tokens:
            log.info("prompt does not extend the cached prefix; generating without it")
            return self.generator.generate(chat, max_new_tokens=max_new_tokens, temperature=temperature)
        start = time.perf_counter()
        with torch.inference_mode():
            out = self.generator.model.generate(**inputs, past_key_values=copy.deepcopy(self.cache),
                                                **self.generator._generate_kwargs(max_new_tokens, temperature))  # fmt: skip
        self.hits += 1
        new = out[0, ids.shape[1] :]
        text = self.generator.tokenizer.decode(new, skip_special_tokens=True).strip()
        return Generation(text, tokens_in=int(ids.shape[1]), tokens_out=int(new.shape[0]),
                          latency_s=time.perf_counter() - start)  # fmt: skip
