"""OpenAI-compatible HTTP backend against real servers on 127.0.0.1: llama-cpp-python's server with
the packaged SmolLM2, and a small stdlib server that fails on purpose (retries, errors).

SmolLM2's exact words depend on the CPU kernels (see test_llamacpp.py): the real-server tests check
counts, streaming against generate and schema-shaped JSON, never what the model says."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from omnimem.errors import BackendUnavailable, ConfigError
from omnimem.vlm import Message, create_generator
from omnimem.vlm.http import HTTPConfig, HTTPGenerator
from omnimem.vlm.structured import schema_errors

FRANCE = [Message("system", "You are a helpful assistant."), Message("user", "What is the capital of France?")]
CITY = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 20}, "population": {"type": "integer"}},
    "required": ["city", "population"],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """``python -m llama_cpp.server`` with SmolLM2 on a free loopback port; killed at the end."""
    pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server]")
    from omnimem.vlm.llamacpp import packaged_smollm2_path

    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", packaged_smollm2_path(), "--host", "127.0.0.1",
           "--port", str(port), "--n_threads", "2", "--n_ctx", "1024"]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base_url}/models", timeout=1.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server not ready after 90 s:\n{log.read_text()[-2000:]}")
            time.sleep(0.25)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def remote(llama_server):
    with HTTPGenerator.from_pretrained(base_url=llama_server, timeout_s=120.0) as gen:
        yield gen


@pytest.mark.slow
def test_generate_counts_tokens_with_the_servers_tokenizer(remote):
    out = remote.generate(FRANCE, max_new_tokens=24)
    text_tokens = sum(remote.count_tokens(m.content) for m in FRANCE)
    assert remote._tokenize_path.endswith("/extras/tokenize")  # the server's own tokenizer counted
    assert text_tokens < out.tokens_in <= text_tokens + 8 * len(FRANCE)  # the chat template's markers, bounded
    assert 0 < out.tokens_out <= 24 and out.text == out.text.strip()
    assert 0 < remote.generate("Count from one to one hundred.", max_new_tokens=3).tokens_out <= 3
    assert remote.models() and remote.model == remote.models()[0]


@pytest.mark.slow
def test_conformance_and_streaming_matches_generate(remote):
    from vlm_conformance import check_generator

    check_generator(remote)
    first = remote.generate(FRANCE, max_new_tokens=24)
    assert remote.generate(FRANCE, max_new_tokens=24).text == first.text  # temperature 0: one answer
    pieces = list(remote.stream(FRANCE, max_new_tokens=24))
    assert pieces and "".join(pieces).strip() == first.text and len(pieces) <= 24


@pytest.mark.slow
def test_json_schema_falls_back_to_what_the_server_accepts(remote):
    out = remote.generate("Give the capital of France as JSON.", json_schema=CITY, max_new_tokens=64)
    value = json.loads(out.text)  # the server's grammar shaped it: no repair was needed
    assert schema_errors(value, CITY) == [] and out.parsed == value, out.text
    assert remote._structured == "json_object"  # llama-cpp-python refuses "json_schema"


def test_server_down_names_the_url():
    port = free_port()  # nothing listens there
    gen = create_generator("http", base_url=f"http://127.0.0.1:{port}/v1", model="m", retries=1, backoff_s=0.01)
    start = time.monotonic()
    with pytest.raises(BackendUnavailable, match=f"127.0.0.1:{port}/v1/chat/completions after 2 attempts"):
        gen.generate("hi", max_new_tokens=2)
    assert time.monotonic() - start < 10


class Flaky(BaseHTTPRequestHandler):
    """Answers 503 to the first ``fail`` chat requests, then a fixed completion; 404 elsewhere."""

    fail = 2
    seen: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/chat/completions":
            self.send_error(404)
            return
        Flaky.seen.append(body)
        if Flaky.fail > 0:
            Flaky.fail -= 1
            self.send_error(503, "busy")
            return
        if body.get("model") == "bad":
            self.send_response(400)
            self.end_headers()
            self.wfile.write(b'{"error": "unknown model bad"}')
            return
        answer = {"choices": [{"message": {"role": "assistant", "content": "Paris"}}],
                  "usage": {"prompt_tokens": 7, "completion_tokens": 1}}  # fmt: skip
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    Flaky.fail, Flaky.seen = 2, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_retries_5xx_with_backoff_then_succeeds(flaky):
    gen = HTTPGenerator(HTTPConfig(base_url=flaky, model="m", retries=2, backoff_s=0.01))
    out = gen.generate("Capital of France?", max_new_tokens=3, images=[])
    assert out.text == "Paris" and out.tokens_in == 7 and out.tokens_out == 1
    assert len(Flaky.seen) == 3 and Flaky.seen[-1]["max_tokens"] == 3


def test_gives_up_after_the_retries(flaky):
    gen = HTTPGenerator(HTTPConfig(base_url=flaky, model="m", retries=1, backoff_s=0.01))
    with pytest.raises(BackendUnavailable, match="HTTP 503"):
        gen.generate("hi")


def test_client_errors_are_config_errors_and_counting_falls_back(flaky):
    Flaky.fail = 0
    gen = HTTPGenerator(HTTPConfig(base_url=flaky, model="bad", backoff_s=0.01))
    with pytest.raises(ConfigError, match="HTTP 400"):
        gen.generate("hi")
    assert gen.count_tokens("hello world") == 6  # no tokenize endpoint: the bytes / 2 estimate
    with pytest.raises(ConfigError, match="structured"):
        HTTPConfig(structured="xml")
