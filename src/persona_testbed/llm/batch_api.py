"""Submit written waves to a batch endpoint and collect their results.

``submit`` uploads every request file not yet submitted (Files API, ``purpose="batch"``) and creates one batch
per file (``/v1/batches``, endpoint ``/v1/chat/completions``); ``poll`` asks each unfinished batch for its state
and, once it has ended (``completed``, ``expired`` or ``cancelled`` with partial output), downloads its output
and error files next to the input (``results-<i>.jsonl``, ``errors-<i>.jsonl``) and ingests them.
``vllm_commands`` gives the ``vllm run-batch`` command line for each file instead (same formats).

A batch can end with requests left unanswered (expired or cancelled with partial output, or ``failed``):
``resubmit_missing`` writes those requests (each once, and none that is in a file still written or in flight)
into a new request file of their wave, which ``submit`` then sends like any written file.

Base URL: explicit > ``OPENAI_BASE_URL`` > api.openai.com; key: ``OPENAI_API_KEY`` (a server other than
api.openai.com without a key gets a placeholder). Keys are never stored.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..core.atomic import atomic_write_bytes
from ..core.errors import UserError
from .deferred import BATCH_URL, BatchStore, IngestReport

#: batch states after which no more output will come
FINAL_STATES = ("completed", "failed", "expired", "cancelled")
#: submission states of a request file whose batch has ended (``poll`` records ``ingested`` once downloaded)
ENDED_STATES = ("ingested", *FINAL_STATES)


def ingested_state(final: str) -> str:
    """The state ``poll`` records once a batch's files are downloaded and ingested: ``ingested`` for a batch
    that completed, ``ingested (expired)`` etc. otherwise, so ``batch status`` still says how it ended."""
    return "ingested" if final == "completed" else f"ingested ({final})"


def has_ended(state: str) -> bool:
    """Whether a submission state is one of an ended batch (``ENDED_STATES`` or ``ingested (…)``)."""
    return state in ENDED_STATES or state.startswith("ingested")


@dataclass
class BatchState:
    """One request file and where it stands."""

    file: str
    wave: str
    status: str
    batch_id: str | None = None


def _client(base_url: str | None, timeout_s: float = 120.0) -> Any:
    import openai

    url = base_url or os.environ.get("OPENAI_BASE_URL") or None
    key = os.environ.get("OPENAI_API_KEY") or None
    if key is None:
        host = (urlparse(url).hostname or "").lower() if url else "api.openai.com"
        if host == "api.openai.com":
            raise UserError(
                "the OpenAI Batch API needs an API key: set OPENAI_API_KEY (export OPENAI_API_KEY=sk-...),"
                " or point OPENAI_BASE_URL / --base-url at your own server"
            )
        key = "sk-no-key-required"
    return openai.OpenAI(api_key=key, base_url=url, max_retries=2, timeout=timeout_s)


def _api_error(exc: BaseException, what: str) -> UserError:
    return UserError(f"{what}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")


def _batch_error(batch: Any) -> str:
    """The first error a failed batch reports (e.g. an invalid input file), in one short line."""
    data = getattr(getattr(batch, "errors", None), "data", None) or []
    first = data[0] if data else None
    msg = getattr(first, "message", None) or "no reason given"
    return " ".join(str(msg).split())[:200]


def states(store: BatchStore) -> list[BatchState]:
    """Every request file of every wave with its submission state (``written`` when not submitted)."""
    subs = {s["file"]: s for s in store.submissions()}
    out = []
    for wave in store.waves():
        for f in wave.files:
            s = subs.get(f)
            out.append(
                BatchState(f, wave.name, s["status"] if s else "written", s["batch_id"] if s else None)
            )
    return out


def missing(store: BatchStore) -> dict[str, list[str]]:
    """Per request file whose batch ended, its requests still without a reply that no written or in-flight
    file holds (each request under one file only). Only waves with unanswered requests are read."""
    open_waves = store.unanswered_waves()
    if not open_waves:
        return {}
    sts = [s for s in states(store) if s.wave in open_waves]
    ended = [s.file for s in sts if has_ended(s.status)]
    busy = [s.file for s in sts if not has_ended(s.status)]
    return store.missing(ended, busy) if ended else {}


def resubmit_missing(store: BatchStore) -> list[tuple[str, str, int]]:
    """Write the requests ``missing`` finds into new request files (``written``, for ``submit``); returns
    ``(file, wave, requests)`` for each. A second call while those files are written or in flight finds none."""
    return store.write_resubmission(missing(store))


def submit(
    store: BatchStore, *, base_url: str | None = None, completion_window: str = "24h"
) -> list[BatchState]:
    """Upload and create a batch for every written file not submitted yet; returns the new submissions."""
    import openai

    todo = [s for s in states(store) if s.status == "written"]
    if not todo:
        return []
    client = _client(base_url)
    done = []
    for st in todo:
        path = store.root / st.file
        try:
            with path.open("rb") as fh:
                up = client.files.create(file=(path.name, fh), purpose="batch")
            batch = client.batches.create(
                input_file_id=up.id, endpoint=BATCH_URL, completion_window=completion_window
            )
        except OSError as exc:
            raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
        except openai.OpenAIError as exc:
            raise _api_error(exc, f"submitting {path}") from None
        store.save_submission(
            st.file, st.wave, input_file_id=up.id, batch_id=batch.id, status=str(batch.status or "validating")
        )
        done.append(BatchState(st.file, st.wave, str(batch.status or "validating"), batch.id))
    return done


def poll(store: BatchStore, *, base_url: str | None = None) -> tuple[list[BatchState], IngestReport | None]:
    """Refresh every submitted, unfinished batch; download and ingest the output of those that ended."""
    import openai

    subs = [s for s in store.submissions() if s["batch_id"] and not has_ended(str(s["status"]))]
    if not subs:
        return states(store), None
    client = _client(base_url)
    results: list[Path] = []
    for s in subs:
        try:
            batch = client.batches.retrieve(s["batch_id"])
        except openai.OpenAIError as exc:
            raise _api_error(exc, f"batch {s['batch_id']}") from None
        status = str(batch.status)
        fields: dict[str, Any] = {
            "status": status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
        }
        if status in FINAL_STATES:
            stem = Path(s["file"]).name.replace("requests-", "").replace(".jsonl", "")
            for kind, fid in (("results", batch.output_file_id), ("errors", batch.error_file_id)):
                if not fid:
                    continue
                try:
                    data = client.files.content(fid).read()
                except openai.OpenAIError as exc:
                    raise _api_error(exc, f"downloading file {fid} of batch {s['batch_id']}") from None
                out = (store.root / s["file"]).parent / f"{kind}-{stem}.jsonl"
                atomic_write_bytes(out, data)
                results.append(out)
            fields["status"] = ingested_state(
                status if status != "failed" else f"failed: {_batch_error(batch)}"
            )
        store.save_submission(s["file"], s["wave"], **fields)
    report = store.ingest(results) if results else None
    return states(store), report


def vllm_commands(store: BatchStore) -> list[str]:
    """``vllm run-batch`` command lines for the files not yet answered (one per request file)."""
    out = []
    subs = {s["file"]: s for s in store.submissions()}
    for wave in store.waves():
        for f in wave.files:
            if str(subs.get(f, {}).get("status", "")).startswith("ingested"):
                continue
            src = store.root / f
            with src.open("rb") as fh:
                model = str(json.loads(fh.readline())["body"]["model"])
            dst = src.parent / src.name.replace("requests-", "results-")
            out.append(
                f"vllm run-batch -i {shlex.quote(str(src))} -o {shlex.quote(str(dst))} "
                f"--model {shlex.quote(model)}"
            )
    return out


__all__ = [
    "BatchState",
    "ENDED_STATES",
    "FINAL_STATES",
    "has_ended",
    "ingested_state",
    "missing",
    "poll",
    "resubmit_missing",
    "states",
    "submit",
    "vllm_commands",
]
