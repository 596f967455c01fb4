"""OpenAI-compatible HTTP backend: vLLM, SGLang, llama.cpp's server, llama-cpp-python's server, Ollama.

Requests go to ``{base_url}/chat/completions`` with httpx: a connect and a read timeout, bounded
retries with exponential backoff on connection errors, timeouts, 429 and 5xx, and a
:class:`~omnimem.errors.BackendUnavailable` naming the URL when the server stays unreachable.
Structured output uses the server's ``response_format``: ``json_schema`` (OpenAI, vLLM, SGLang,
Ollama) or ``json_object`` with a ``schema`` (llama-cpp-python); ``"auto"`` tries the first and falls
back on a 4xx. Streaming reads the server-sent events of ``"stream": true``. Token counting asks the
server's tokenize endpoint (``/tokenize`` of vLLM and llama.cpp, ``/extras/tokenize`` of
llama-cpp-python) and falls back to an over-estimate when there is none.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from omnimem.errors import BackendUnavailable, ConfigError
from omnimem.vlm.base import (
    Generation,
    MessagesLike,
    as_messages,
    check_generation_args,
    estimate_tokens,
    image_data_uri,
)
from omnimem.vlm.structured import parse_structured

__all__ = ["HTTPConfig", "HTTPGenerator"]

log = logging.getLogger(__name__)

_STRUCTURED = ("auto", "json_schema", "json_object", "none")
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def _rejects_format(response: httpx.Response) -> bool:
    """A refusal of ``response_format`` (llama-cpp-python answers it with a 500, not a 4xx)."""
    return response.status_code in (400, 422, 500) and "response_format" in response.text


@dataclass(frozen=True)
class HTTPConfig:
    """Where the server is and how patiently to talk to it."""

    base_url: str = "http://127.0.0.1:8000/v1"  # the OpenAI-compatible root, usually ending in /v1
    model: str | None = None  # the served model's name; None: the first one GET /models lists
    api_key: str | None = None  # sent as "Authorization: Bearer ..."; None: no header
    connect_timeout_s: float = 5.0  # seconds to open a connection
    timeout_s: float = 120.0  # seconds to wait for a response (a long generation needs more)
    retries: int = 2  # extra attempts after a connection error, a timeout, 429 or 5xx
    backoff_s: float = 0.5  # wait before the first retry, doubled for each next one
    structured: str = "auto"  # json_schema transport: "auto", "json_schema", "json_object" or "none"
    tokenize: bool = True  # ask the server to count tokens; False: estimate (UTF-8 bytes / 2)

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        if self.connect_timeout_s <= 0 or self.timeout_s <= 0:
            raise ConfigError("timeouts must be positive seconds")
        if self.retries < 0 or self.backoff_s < 0:
            raise ConfigError("retries and backoff_s must be >= 0")
        if self.structured not in _STRUCTURED:
            raise ConfigError(f"structured must be one of {', '.join(_STRUCTURED)}, got {self.structured!r}")


class HTTPGenerator:
    """A :class:`~omnimem.vlm.base.Generator` talking to an OpenAI-compatible server."""

    def __init__(self, config: HTTPConfig = HTTPConfig(), *, client: httpx.Client | None = None) -> None:
        self.config = config
        self.base_url = config.base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        timeout = httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s)
        self.client = client or httpx.Client(timeout=timeout, headers=headers)
        self._model = config.model
        self._structured = config.structured
        self._tokenize_path: str | None = None if config.tokenize else ""
        self.name = f"{self.base_url}#{config.model or ''}"

    @classmethod
    def from_pretrained(
        cls, model: str | None = None, *, config: HTTPConfig | None = None, **options: Any
    ) -> HTTPGenerator:
        """Talk to ``model`` on a server; ``options`` override :class:`HTTPConfig` fields
        (``base_url=``, ``timeout_s=``, ``retries=`` ...). Nothing is sent until the first call."""
        if model is not None:
            options["model"] = model
        try:
            config = dataclasses.replace(config or HTTPConfig(), **options)
        except TypeError as e:
            known = ", ".join(f.name for f in dataclasses.fields(HTTPConfig))
            raise ConfigError(f"{e}; HTTPGenerator options are: {known}") from None
        return cls(config)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> HTTPGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ----------------------------------------------------------------------------

    def _send(self, method: str, url: str, payload: Any = None, *, stream: bool = False) -> httpx.Response:
        """One request with bounded retries; raises BackendUnavailable / ConfigError with the URL."""
        attempts = self.config.retries + 1
        for attempt in range(attempts):
            try:
                request = self.client.build_request(method, url, json=payload)
                response = self.client.send(request, stream=stream)
            except httpx.TransportError as e:  # connection refused, DNS, timeouts, broken pipes
                problem = f"{type(e).__name__}: {e}"
                response = None
            else:
                if response.status_code < 400:
                    return response
                if stream:
                    response.read()
                problem = f"HTTP {response.status_code}: {response.text[:500]}"
                if response.status_code not in _RETRY_STATUS or _rejects_format(response):
                    return response  # a deterministic rejection: the caller decides (fallback or ConfigError)
            if attempt + 1 < attempts:
                wait = self.config.backoff_s * 2**attempt
                log.warning("%s %s failed (%s); retry %d/%d in %.1f s", method, url, problem, attempt + 1,
                            attempts - 1, wait)  # fmt: skip
                time.sleep(wait)
        hint = (
            "start the server (e.g. `python -m llama_cpp.server --model model.gguf`, `vllm serve MODEL`,"
            " `ollama serve`) or fix base_url"
        )
        raise BackendUnavailable(
            f"no working OpenAI-compatible server at {url} after {attempts} attempts ({problem}); {hint}"
        )

    def _check(self, response: httpx.Response, url: str) -> dict[str, Any]:
        if response.status_code >= 400:
            fix = "set api_key=" if response.status_code in (401, 403) else "check model= and the request options"
            raise ConfigError(f"server at {url} rejected the request (HTTP {response.status_code}: "
                              f"{response.text[:500]}); {fix}")  # fmt: skip
        try:
            return response.json()
        except json.JSONDecodeError as e:
            raise BackendUnavailable(f"server at {url} answered non-JSON: {response.text[:200]!r}") from e

    def models(self) -> list[str]:
        """The model names the server serves (GET /models)."""
        url = f"{self.base_url}/models"
        data = self._check(self._send("GET", url), url)
        return [m["id"] for m in data.get("data", [])]

    @property
    def model(self) -> str:
        if self._model is None:
            served = self.models()
            if not served:
                raise ConfigError(f"the server at {self.base_url} lists no models; pass model=")
            self._model = served[0]
        return self._model

    # -- the Generator protocol -----------------------------------------------------------------

    def _payload(
        self, messages: MessagesLike, images: Sequence[Any], max_new_tokens: int, temperature: float
    ) -> dict[str, Any]:
        chat: list[dict[str, Any]] = [m.to_dict() for m in as_messages(messages)]
        if images:
            last_user = max((i for i, m in enumerate(chat) if m["role"] == "user"), default=-1)
            if last_user < 0:
                raise ConfigError("images need a user turn to attach to")
            parts: list[dict[str, Any]] = [
                {"type": "image_url", "image_url": {"url": image_data_uri(img)}} for img in images
            ]
            parts.append({"type": "text", "text": chat[last_user]["content"]})
            chat[last_user] = {"role": "user", "content": parts}
        return {"model": self.model, "messages": chat, "max_tokens": max_new_tokens, "temperature": temperature}

    @staticmethod
    def _response_format(mode: str, schema: Mapping[str, Any]) -> dict[str, Any] | None:
        if mode == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": "answer", "schema": dict(schema), "strict": True}}
        if mode == "json_object":
            return {"type": "json_object", "schema": dict(schema)}
        return None

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
        payload = self._payload(messages, images, max_new_tokens, temperature)
        url = f"{self.base_url}/chat/completions"
        modes = [self._structured] if json_schema is not None else ["none"]
        if modes == ["auto"]:
            modes = ["json_schema", "json_object", "none"]
        start = time.perf_counter()
        for n, mode in enumerate(modes):
            fmt = self._response_format(mode, json_schema) if json_schema is not None else None
            response = self._send("POST", url, {**payload, "response_format": fmt} if fmt else payload)
            if n + 1 < len(modes) and (response.status_code in (400, 422) or _rejects_format(response)):
                log.info("server at %s rejects response_format %r; trying %r", url, mode, modes[n + 1])
                continue
            data = self._check(response, url)
            if json_schema is not None:
                self._structured = mode  # remember what this server accepts
            break
        latency = time.perf_counter() - start
        text = (data["choices"][0]["message"].get("content") or "").strip()
        usage = data.get("usage") or {}
        tokens_out = usage.get("completion_tokens")
        return Generation(
            text=text,
            tokens_in=int(usage.get("prompt_tokens") or 0),
            tokens_out=int(tokens_out if tokens_out is not None else self.count_tokens(text)),
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
        """Yield text deltas from the server-sent events (retries only before the first byte)."""
        check_generation_args(max_new_tokens, temperature)
        payload = {**self._payload(messages, images, max_new_tokens, temperature), "stream": True}
        url = f"{self.base_url}/chat/completions"
        response = self._send("POST", url, payload, stream=True)
        try:
            if response.status_code >= 400:
                self._check(response, url)
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue  # blank separators, ": ping" comments, "event:" lines
                data = line[len("data:") :].strip()
                if data == "[DONE]":
                    break
                choices = json.loads(data).get("choices") or [{}]
                piece = (choices[0].get("delta") or {}).get("content")
                if piece:
                    yield piece
        finally:
            response.close()

    def count_tokens(self, text: str) -> int:
        return self._count(text)

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - compression counts the same sentences repeatedly
    def _count(self, text: str) -> int:
        if self._tokenize_path == "":
            return estimate_tokens(text)
        root = self.base_url.removesuffix("/v1")
        candidates = {
            f"{root}/extras/tokenize": {"input": text, "model": self._model},  # llama-cpp-python
            f"{root}/tokenize": {"content": text, "prompt": text, "model": self._model, "add_special_tokens": False},
        }
        for url, payload in candidates.items():
            if self._tokenize_path not in (None, url):
                continue
            try:
                response = self.client.post(url, json=payload)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code == 200:
                data = response.json()
                if "tokens" in data or "count" in data:
                    self._tokenize_path = url
                    return int(data.get("count", len(data.get("tokens", []))))
        if self._tokenize_path is None:
            log.warning("the server at %s has no tokenize endpoint; estimating token counts (bytes / 2)", root)
        self._tokenize_path = ""
        return estimate_tokens(text)
