"""A real HTTP server on 127.0.0.1 serving fixture files, with Range support and fault injection."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

_MIRROR_ENV = os.environ.get("PERSONA_TESTBED_MIRROR")


@pytest.fixture(autouse=True)
def _no_mirror_env(monkeypatch):
    """Data tests choose their mirror explicitly; a PERSONA_TESTBED_MIRROR set for CI must not leak in."""
    monkeypatch.delenv("PERSONA_TESTBED_MIRROR", raising=False)
    monkeypatch.delenv("PERSONA_TESTBED_CENSUS_URL", raising=False)


@pytest.fixture
def mirror() -> Path:
    """The offline mirror (as the root fixture), found from the environment captured at import."""
    here = Path(__file__).resolve().parents[2]
    for c in (_MIRROR_ENV, here.parent / "shared" / "data", Path("/work/shared/data")):
        if c and (Path(c) / "SHA256SUMS").exists():
            return Path(c)
    pytest.skip("offline data mirror (../shared/data) not available")


@dataclass
class FileServer:
    """Serves ``files`` (url path -> bytes). Faults: ``drop_after[path] = n`` closes the socket after
    n body bytes on the first request; ``ignore_range`` paths answer 200 to Range requests;
    ``fail[path] = [503, ...]`` answers those statuses first. ``requests`` logs (path, Range, status)."""

    base: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    drop_after: dict[str, int] = field(default_factory=dict)
    ignore_range: set[str] = field(default_factory=set)
    fail: dict[str, list[int]] = field(default_factory=dict)
    requests: list[tuple[str, str | None, int]] = field(default_factory=list)

    def add(self, path: str, data: bytes) -> str:
        """Serve ``data`` at ``path``; returns the full URL."""
        self.files[path] = data
        return self.base + path


def _handler(state: FileServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):  # noqa: N802
            path = self.path.split("?")[0]
            rng = self.headers.get("Range")
            if state.fail.get(path):
                code = state.fail[path].pop(0)
                state.requests.append((path, rng, code))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = state.files.get(path)
            if data is None:
                state.requests.append((path, rng, 404))
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = 0
            if rng and path not in state.ignore_range:
                start = int(rng.split("=")[1].split("-")[0])
                if start >= len(data):
                    state.requests.append((path, rng, 416))
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                code = 206
            else:
                self.send_response(200)
                code = 200
            state.requests.append((path, rng, code))
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            cut = state.drop_after.pop(path, None)
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def file_server():
    state = FileServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
