"""The Generator conformance checks every backend's tests run (DESIGN.md section 2)."""

from __future__ import annotations

from omnimem.vlm.base import Generation, Generator, Message


def check_generator(gen: Generator, *, max_new_tokens: int = 4, images: tuple = ()) -> Generation:
    """Protocol surface, generate's contract, stream and count_tokens; returns the Generation."""
    assert isinstance(gen, Generator)
    assert isinstance(gen.name, str) and gen.name
    messages = [Message("system", "You are a helpful assistant."), Message("user", "Describe the image.")]
    out = gen.generate(messages, images=images, max_new_tokens=max_new_tokens)
    assert isinstance(out, Generation)
    assert isinstance(out.text, str)
    assert 0 < out.tokens_out <= max_new_tokens
    assert out.tokens_in > gen.count_tokens("Describe the image.")
    assert out.latency_s > 0
    assert out.parsed is None
    pieces = list(gen.stream(messages, images=images, max_new_tokens=max_new_tokens))
    assert all(isinstance(p, str) for p in pieces)
    assert gen.count_tokens("") == 0
    n = gen.count_tokens("The capital of France is Paris.")
    assert 0 < n < len("The capital of France is Paris.")
    return out
