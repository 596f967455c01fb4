"""vlm layer: generators (LLMs and VLMs) behind one protocol, prompts, structured output, and the
compressed context a model is given (DESIGN.md section 1, "Compressed context for an efficient VLM").

``create_generator("smollm2")`` loads the packaged SmolLM2-135M-Instruct on llama.cpp (offline);
``create_generator("llamacpp", path)``, ``create_generator("hf", path)`` and
``create_generator("http", base_url=..., model=...)`` reach the other backends. A leaf layer: it
imports only omnimem.errors / types / config / registry.
"""

from __future__ import annotations

from typing import Any

from omnimem.registry import Registry
from omnimem.vlm.base import Generation, Generator, Message, as_messages
from omnimem.vlm.compress import CompressedContext, CompressionConfig, compress_context
from omnimem.vlm.prompts import Evidence, Triplet, answer_messages, render_triplet
from omnimem.vlm.structured import generate_json, parse_json

__all__ = [
    "GENERATORS",
    "create_generator",
    "Generator",
    "Generation",
    "Message",
    "as_messages",
    "Evidence",
    "Triplet",
    "answer_messages",
    "render_triplet",
    "generate_json",
    "parse_json",
    "CompressionConfig",
    "CompressedContext",
    "compress_context",
]

GENERATORS = Registry("generator")
GENERATORS.register("smollm2", "omnimem.vlm.llamacpp:LlamaCppGenerator.from_pretrained")
GENERATORS.register("llamacpp", "omnimem.vlm.llamacpp:LlamaCppGenerator.from_pretrained")
GENERATORS.register("hf", "omnimem.vlm.hf:HFGenerator.from_pretrained")
GENERATORS.register("http", "omnimem.vlm.http:HTTPGenerator.from_pretrained")


def create_generator(name: str, *args: Any, **options: Any) -> Generator:
    """Build the generator registered as ``name``.

    ``"smollm2"`` takes no path (the packaged model); ``"llamacpp"`` and ``"hf"`` take a model path
    or name as the first argument; ``"http"`` takes ``base_url=`` and ``model=``. ``options`` are the
    backend's config fields (``n_ctx=``, ``device=``, ``timeout_s=`` ...).
    """
    if name == "smollm2":
        return GENERATORS.create(name, "smollm2", *args, **options)
    return GENERATORS.create(name, *args, **options)
