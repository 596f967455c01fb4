"""transformers backend: text LLMs (``AutoModelForCausalLM`` + tokenizer) and VLMs
(``AutoModelForImageTextToText`` + ``AutoProcessor``: Qwen2-VL / Qwen2.5-VL, LLaVA / LLaVA-OneVision,
SmolVLM / Idefics3 ...), on the CPU or CUDA, in fp32, bf16 or fp16.

Which of the two a checkpoint is comes from its config (a ``vision_config`` means a VLM), never from
its name. The prompt is the checkpoint's own chat template; images become ``{"type": "image"}``
parts of the last user turn, which every HF VLM template renders as its image placeholder, and the
processor expands the placeholder into the family's visual tokens. ``json_schema`` is not
constrained here: the answer is parsed and validated (``Generation.parsed``), and
:func:`omnimem.vlm.structured.generate_json` adds the repair + re-prompt loop.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from omnimem.errors import BackendUnavailable, ConfigError, missing_extra
from omnimem.vlm.base import Generation, MessagesLike, as_messages, check_generation_args, load_image
from omnimem.vlm.structured import parse_structured

__all__ = ["HFConfig", "HFGenerator"]

log = logging.getLogger(__name__)

_DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class HFConfig:
    """How a transformers checkpoint is loaded."""

    device: str = "auto"  # "cpu", "cuda", "cuda:1" ...; "auto": cuda when available, else cpu
    dtype: str = "auto"  # one of _DTYPES; "auto": bfloat16 on CUDA (float16 if unsupported), float32 on CPU
    attn_implementation: str | None = None  # "sdpa", "eager", "flash_attention_2"; None: transformers' choice
    local_files_only: bool = False  # True: never contact a model hub, even for a name
    trust_remote_code: bool = False  # allow checkpoints that ship their own modelling code

    def __post_init__(self) -> None:
        if self.dtype not in _DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(_DTYPES)}, got {self.dtype!r}")
        if not (self.device == "auto" or self.device == "cpu" or self.device.startswith(("cuda", "mps"))):
            raise ConfigError(f"device must be 'auto', 'cpu', 'cuda[:n]' or 'mps', got {self.device!r}")


def _device_and_dtype(config: HFConfig) -> tuple[str, Any]:
    import torch

    device = config.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BackendUnavailable(f"device={device!r} but torch sees no CUDA GPU; use device='cpu'")
    if config.dtype != "auto":
        dtype = getattr(torch, config.dtype)
    elif device.startswith("cuda"):
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        dtype = torch.float32
    return device, dtype


class HFGenerator:
    """A :class:`~omnimem.vlm.base.Generator` over a transformers model and its processor/tokenizer."""

    def __init__(self, model: Any, processor: Any, *, name: str, config: HFConfig = HFConfig()) -> None:
        self.model = model
        self.processor = processor  # an AutoProcessor for VLMs, a tokenizer for text LLMs
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.is_vlm = processor is not self.tokenizer
        self.name = name
        self.config = config
        self.device = next(model.parameters()).device
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, config: HFConfig | None = None, **options: Any) -> HFGenerator:
        """Load a checkpoint folder (or a hub name where a hub is reachable); ``options`` override
        :class:`HFConfig` fields (``device=``, ``dtype=`` ...)."""
        try:
            config = dataclasses.replace(config or HFConfig(), **options)
        except TypeError as e:
            known = ", ".join(f.name for f in dataclasses.fields(HFConfig))
            raise ConfigError(f"{e}; HFGenerator options are: {known}") from None
        try:
            import transformers
        except ImportError as e:
            raise missing_extra("transformers", "default") from e
        device, dtype = _device_and_dtype(config)
        common = {"trust_remote_code": config.trust_remote_code,
                  "local_files_only": config.local_files_only or os.path.isdir(name_or_path)}  # fmt: skip
        start = time.perf_counter()
        try:
            model_config = transformers.AutoConfig.from_pretrained(name_or_path, **common)
            is_vlm = getattr(model_config, "vision_config", None) is not None
            model_cls = transformers.AutoModelForImageTextToText if is_vlm else transformers.AutoModelForCausalLM
            extra = {"attn_implementation": config.attn_implementation} if config.attn_implementation else {}
            model = model_cls.from_pretrained(name_or_path, dtype=dtype, **common, **extra)
            processor_cls = transformers.AutoProcessor if is_vlm else transformers.AutoTokenizer
            processor = processor_cls.from_pretrained(name_or_path, **common)
        except (OSError, ValueError) as e:
            raise BackendUnavailable(
                f"cannot load transformers checkpoint {name_or_path!r} ({e}); pass a local folder with"
                " config.json, weights and tokenizer/processor files"
            ) from e
        model.to(device).eval()
        log.info("loaded %s (%s) on %s as %s in %.2f s", name_or_path, type(model).__name__, device, dtype,
                 time.perf_counter() - start)  # fmt: skip
        return cls(model, processor, name=name_or_path, config=config)

    # -- prompt ---------------------------------------------------------------------------------

    def _render(self, messages: MessagesLike, n_images: int) -> str:
        chat: list[dict[str, Any]] = [m.to_dict() for m in as_messages(messages)]
        if n_images:
            if not self.is_vlm:
                raise ConfigError(f"{self.name} is a text-only model; load a VLM checkpoint to send images")
            last_user = max((i for i, m in enumerate(chat) if m["role"] == "user"), default=-1)
            if last_user < 0:
                raise ConfigError("images need a user turn to attach to")
            parts: list[dict[str, Any]] = [{"type": "image"} for _ in range(n_images)]
            parts.append({"type": "text", "text": chat[last_user]["content"]})
            chat[last_user] = {"role": "user", "content": parts}
        template_owner = self.processor if getattr(self.processor, "chat_template", None) else self.tokenizer
        if not getattr(template_owner, "chat_template", None):
            raise ConfigError(
                f"{self.name} has no chat template (a base model?); set one: generator.tokenizer.chat_template = ..."
            )
        return template_owner.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)

    def prepare(self, messages: MessagesLike, images: Sequence[Any] = ()) -> dict[str, Any]:
        """The model inputs for ``messages`` (+ ``images`` on the last user turn), on the model's device:
        ``input_ids (1, n)``, ``attention_mask``, and for VLMs the processor's ``pixel_values``,
        ``image_grid_thw``, ``mm_token_type_ids`` ... as ``model(**inputs)`` takes them."""
        prompt = self._render(messages, len(images))
        if self.is_vlm:
            pictures = [load_image(img) for img in images] or None
            inputs = self.processor(text=[prompt], images=pictures, return_tensors="pt")
        else:
            inputs = self.tokenizer([prompt], add_special_tokens=False, return_tensors="pt")
        return {k: v.to(self.device) if hasattr(v, "to") else v for k, v in inputs.items()}

    def generate_kwargs(self, max_new_tokens: int, temperature: float) -> dict[str, Any]:
        """``model.generate`` options for greedy (``temperature=0``) or sampled decoding."""
        kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": temperature > 0}
        if temperature > 0:
            kwargs["temperature"] = temperature
        else:  # greedy: silence sampling defaults a checkpoint's generation_config may carry
            kwargs.update(temperature=None, top_p=None, top_k=None)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        if pad is not None:
            kwargs["pad_token_id"] = pad
        return kwargs

    # -- the Generator protocol -----------------------------------------------------------------

    def generate(
        self,
        messages: MessagesLike,
        *,
        images: Sequence[Any] = (),
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        json_schema: Mapping[str, Any] | None = None,
    ) -> Generation:
        import torch

        check_generation_args(max_new_tokens, temperature)
        start = time.perf_counter()
        inputs = self.prepare(messages, images)
        n_in = int(inputs["input_ids"].shape[1])
        with self._lock, torch.inference_mode():
            out = self.model.generate(**inputs, **self.generate_kwargs(max_new_tokens, temperature))
        new = out[0, n_in:]
        text = self.tokenizer.decode(new, skip_special_tokens=True).strip()
        return Generation(
            text=text,
            tokens_in=n_in,
            tokens_out=int(new.shape[0]),
            latency_s=time.perf_counter() - start,
            parsed=parse_structured(text, json_schema) if json_schema is not None else None,
        )

    def stream(
        self,
        messages: MessagesLike,
        *,
        images: Sequence[Any] = (),
        max_new_tokens: int = 256,
        temperature: float = 0.0,
    ) -> Iterator[str]:
        import torch
        from transformers import TextIteratorStreamer

        check_generation_args(max_new_tokens, temperature)
        inputs = self.prepare(messages, images)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = {**inputs, **self.generate_kwargs(max_new_tokens, temperature), "streamer": streamer}
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with self._lock, torch.inference_mode():
                    self.model.generate(**kwargs)
            except BaseException as e:  # surfaced in the caller's thread below
                errors.append(e)
                streamer.end()

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        for piece in streamer:
            if piece:
                yield piece
        worker.join()
        if errors:
            raise errors[0]

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
