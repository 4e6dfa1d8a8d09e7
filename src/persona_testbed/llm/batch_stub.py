"""Loopback batch endpoints for tests and benchmarks: ``run_batch_file`` and ``BatchStubServer``.

``run_batch_file(input, output)`` answers an OpenAI Batch input file with the stub's responder and writes the
output file, as ``vllm run-batch -i INPUT -o OUTPUT`` would (one output line per request, in order;
``limit`` stops early to make a partial file, ``fail`` names custom_ids answered with an HTTP 500 line).

``BatchStubServer`` is a ``StubServer`` that also serves the Files and Batches endpoints the ``openai`` SDK
uses: ``POST /v1/files`` (multipart upload), ``GET /v1/files/{id}``, ``GET /v1/files/{id}/content``,
``POST /v1/batches``, ``GET /v1/batches/{id}``. A batch runs when it is created; it reports ``in_progress``
for its first ``polls_before_done`` retrievals, then ``completed`` with its output file. With ``expire_after``
set (an attribute, read when a batch is created) a batch answers only that many requests and ends
``expired``: the output file omits the others, which its error file lists as OpenAI does (``batch_expired``
lines; none with ``expired_errors = False``).
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import uuid
from pathlib import Path
from typing import Any, cast

from .stub_server import Responder, StubServer, _completion, _Handler, echo_responder


def answer_line(
    line: dict[str, Any], responder: Responder, model_name: str = "stub", fail: bool = False
) -> dict[str, Any]:
    """The output record for one input record, as OpenAI's Batch API (and ``vllm run-batch``) writes it."""
    cid = line.get("custom_id")
    rid = f"req-{uuid.uuid4().hex[:12]}"
    if fail:
        return {
            "id": f"batch_req_{uuid.uuid4().hex[:12]}",
            "custom_id": cid,
            "error": None,
            "response": {
                "status_code": 500,
                "request_id": rid,
                "body": {"error": {"message": "server error (stub)"}},
            },
        }
    body = line.get("body") or {}
    reply = responder(body)
    text, finish = reply if isinstance(reply, tuple) else (reply, "stop")
    return {
        "id": f"batch_req_{uuid.uuid4().hex[:12]}",
        "custom_id": cid,
        "error": None,
        "response": {
            "status_code": 200,
            "request_id": rid,
            "body": _completion(body, text, model_name, finish),
        },
    }


def answer_text(
    data: str,
    responder: Responder,
    model_name: str = "stub",
    limit: int | None = None,
    fail: frozenset[str] = frozenset(),
) -> str:
    out: list[str] = []
    for raw in data.splitlines():
        if not raw.strip():
            continue
        if limit is not None and len(out) >= limit:
            break
        line = json.loads(raw)
        out.append(json.dumps(answer_line(line, responder, model_name, line.get("custom_id") in fail)) + "\n")
    return "".join(out)


def expired_text(data: str, skip: int) -> str:
    """Error-file lines for the requests of ``data`` after the first ``skip``: never run, the batch expired."""
    out: list[str] = []
    for raw in [r for r in data.splitlines() if r.strip()][skip:]:
        rec = {
            "id": f"batch_req_{uuid.uuid4().hex[:12]}",
            "custom_id": json.loads(raw).get("custom_id"),
            "response": None,
            "error": {
                "code": "batch_expired",
                "message": "This request could not be executed before the completion window expired.",
            },
        }
        out.append(json.dumps(rec) + "\n")
    return "".join(out)


def run_batch_file(
    input_path: str | Path,
    output_path: str | Path,
    *,
    responder: Responder | None = None,
    model_name: str = "stub",
    limit: int | None = None,
    fail: frozenset[str] = frozenset(),
) -> int:
    """Answer every request of ``input_path`` into ``output_path`` (like ``vllm run-batch``); returns lines."""
    text = answer_text(
        Path(input_path).read_text(encoding="utf-8"), responder or echo_responder, model_name, limit, fail
    )
    Path(output_path).write_text(text, encoding="utf-8")
    return text.count("\n")


class _BatchHandler(_Handler):
    server: Any

    def do_GET(self) -> None:  # noqa: N802
        state: _BatchState = self.server.batch_state
        parts = self.path.split("?")[0].rstrip("/").split("/")
        if len(parts) >= 4 and parts[-3] == "files" and parts[-1] == "content":
            data = state.files.get(parts[-2])
            if data is None:
                return self._send(404, b'{"error": {"message": "no such file"}}')
            return self._send(200, data, content_type="application/octet-stream")
        if len(parts) >= 3 and parts[-2] == "files":
            meta = state.meta.get(parts[-1])
            if meta is None:
                return self._send(404, b'{"error": {"message": "no such file"}}')
            return self._send(200, json.dumps(meta).encode())
        if len(parts) >= 3 and parts[-2] == "batches":
            batch = state.batches.get(parts[-1])
            if batch is None:
                return self._send(404, b'{"error": {"message": "no such batch"}}')
            with state_lock(self):
                batch["_polls"] += 1
                done = batch["_polls"] > self.server.stub.polls_before_done
            body = {k: v for k, v in batch.items() if not k.startswith("_")}
            if done:
                body.update(
                    status=batch["_final"], output_file_id=batch["_output"], error_file_id=batch["_errors"]
                )
            return self._send(200, json.dumps(body).encode())
        return super().do_GET()

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?")[0].rstrip("/")
        if not (path.endswith("/files") or path.endswith("/batches")):
            return super().do_POST()
        state: _BatchState = self.server.batch_state
        stub = self.server.stub
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if path.endswith("/files"):
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                f"Content-Type: {self.headers.get('Content-Type')}\r\n\r\n".encode() + raw
            )
            data = b""
            name = "upload.jsonl"
            for part in msg.iter_parts():
                if part.get_param("name", header="content-disposition") == "file":
                    data = cast("bytes", part.get_payload(decode=True) or b"")
                    name = part.get_filename() or name
            fid = self._add_file(state, data, name, "batch")
            return self._send(200, json.dumps(state.meta[fid]).encode())
        req = json.loads(raw or b"{}")
        batch_input = state.files.get(req.get("input_file_id", ""))
        if batch_input is None:
            return self._send(404, b'{"error": {"message": "no such input file"}}')
        stub._count("batches")
        limit = stub.expire_after
        out = answer_text(batch_input.decode(), stub.responder, stub.model_name, limit=limit).encode()
        out_id = self._add_file(state, out, "output.jsonl", "batch_output")
        err_id = None
        if limit is not None and stub.expired_errors:
            errors = expired_text(batch_input.decode(), limit)
            err_id = (
                self._add_file(state, errors.encode(), "errors.jsonl", "batch_output") if errors else None
            )
        bid = f"batch_{uuid.uuid4().hex[:16]}"
        state.batches[bid] = {
            "id": bid,
            "object": "batch",
            "endpoint": req.get("endpoint"),
            "errors": None,
            "input_file_id": req["input_file_id"],
            "completion_window": req.get("completion_window"),
            "status": "in_progress",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": 0,
            "_polls": 0,
            "_output": out_id,
            "_errors": err_id,
            "_final": "completed" if limit is None else "expired",
        }
        body = {k: v for k, v in state.batches[bid].items() if not k.startswith("_")}
        return self._send(200, json.dumps(body).encode())

    @staticmethod
    def _add_file(state: _BatchState, data: bytes, name: str, purpose: str) -> str:
        fid = f"file-{uuid.uuid4().hex[:16]}"
        state.files[fid] = data
        state.meta[fid] = {
            "id": fid,
            "object": "file",
            "bytes": len(data),
            "created_at": 0,
            "filename": name,
            "purpose": purpose,
            "status": "processed",
        }
        return fid


def state_lock(handler: _BatchHandler) -> Any:
    return handler.server.stub._lock


class _BatchState:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.meta: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}


class BatchStubServer(StubServer):
    """A ``StubServer`` that also implements ``/v1/files`` and ``/v1/batches`` (see the module doc)."""

    def __init__(self, *, polls_before_done: int = 1, **kwargs: Any):
        super().__init__(**kwargs)
        self.polls_before_done = polls_before_done
        self.expire_after: int | None = None  # answer only this many requests per batch, then end expired
        self.expired_errors = True  # an expired batch lists its unanswered requests in an error file
        self._httpd.RequestHandlerClass = _BatchHandler
        self._httpd.batch_state = _BatchState()  # type: ignore[attr-defined]


__all__ = ["BatchStubServer", "answer_line", "answer_text", "expired_text", "run_batch_file"]
