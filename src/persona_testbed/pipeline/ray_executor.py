"""The Ray executor: a wave's pending requests run as a Ray Data pipeline; results land in the run.

A stage runs in deferred mode (as with the batch executor, ``llm/deferred.py``); after each pass its pending
requests become a Ray dataset whose ``map_batches`` workers answer them through our LLM layer
(``llm.answer.answer_requests``: HTTP to an OpenAI-compatible endpoint, our retries and backoff). The driver
writes the answers into ``RUN/batch/batch.db`` as they stream back (a killed driver keeps every answer that
arrived), then the stage is run again and replays them through the client: same validation, cache keys,
call-log rows and artifacts as ``local``. Ray is an optional extra (``pip install 'persona-testbed[ray]'``);
``ray`` is imported only here, inside functions.

Connect to a cluster with ``RAY_ADDRESS`` or ``[execution.ray] address``; otherwise a local instance is
started (``num_cpus``) and shut down with the session. A Ray instance already initialised in the process is
used as it is.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import warnings
from importlib.util import find_spec
from typing import Any

from ..core.errors import UserError
from ..llm.answer import answer_requests
from ..llm.deferred import BatchStore
from ..llm.models import parse_model
from . import ray_vllm
from .config import LLMConfig, RayConfig

INSTALL_HINT = "pip install 'persona-testbed[ray]' (or pip install 'ray[data]')"


def require_ray() -> None:
    """``UserError`` with the install command when Ray is not installed."""
    if find_spec("ray") is None:
        raise UserError(f"the ray executor needs Ray, which is not installed: {INSTALL_HINT}")


def answer_batch(
    batch: dict[str, Any], *, base_url: str | None, timeout_s: float, max_retries: int, concurrency: int
) -> dict[str, list[Any]]:
    """``map_batches`` function run by the Ray workers: answer a block of requests (never raises for a
    model or network failure: those come back as ``error``)."""
    ids = [str(x) for x in batch["id"]]
    bodies = [json.loads(str(x)) for x in batch["body"]]
    answers = asyncio.run(
        answer_requests(
            bodies, base_url=base_url, timeout_s=timeout_s, max_retries=max_retries, concurrency=concurrency
        )
    )
    return {
        "id": ids,
        "status_code": [a[0] or 0 for a in answers],
        "response": [a[1] or "" for a in answers],
        "error": [a[2] or "" for a in answers],
    }


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """``UserError`` naming ``address`` when nothing listens there (``ray.init`` would retry for minutes)."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"Ray address {address!r}: expected host:port or ray://host:port")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise UserError(
            f"cannot reach Ray at {address}: {exc.strerror or type(exc).__name__} "
            "(check RAY_ADDRESS / [execution.ray] address)"
        ) from None


class RayExecutor:
    """Answers waves on Ray for one session (started on first use, stopped by ``close``)."""

    def __init__(self, ray_config: RayConfig, llm: LLMConfig):
        require_ray()
        self.config = ray_config
        self.llm = llm
        self._started_here = False

    def _ensure(self) -> None:
        import ray

        if ray.is_initialized():
            return
        address = self.config.address or os.environ.get("RAY_ADDRESS") or None
        if address:
            check_reachable(address)
        try:
            if address:
                ray.init(address=address, log_to_driver=False, logging_level="ERROR")
            else:
                ray.init(
                    num_cpus=self.config.num_cpus,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level="ERROR",
                )
        except Exception as exc:  # ConnectionError, RuntimeError, ValueError … from ray.init
            where = f"at {address}" if address else "locally"
            raise UserError(
                f"cannot start or reach Ray {where}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            ) from None
        self._started_here = True

    def run_wave(
        self,
        store: BatchStore,
        stage: str,
        pending: dict[str, dict[str, Any]],
        model_of: dict[str, str] | None = None,
    ) -> int:
        """Answer ``pending`` on Ray; answers are saved to ``store`` as they arrive. Returns how many.

        ``model_of`` maps a request id to the model string that deferred it: requests of ``vllm/`` models go
        to vLLM engines on GPU workers (``ray_vllm``), the others to the OpenAI-compatible endpoint."""
        model_of = model_of or {}
        by_vllm: dict[str, dict[str, dict[str, Any]]] = {}
        rest: dict[str, dict[str, Any]] = {}
        for rid, body in pending.items():
            model = model_of.get(rid, "")
            if model and parse_model(model).kind == "vllm":
                by_vllm.setdefault(model, {})[rid] = body
            else:
                rest[rid] = body
        if by_vllm:
            ray_vllm.require_vllm()  # before starting Ray: a missing extra is one line at once
        self._ensure()
        done = 0
        for model, requests in sorted(by_vllm.items()):
            done += ray_vllm.run_vllm_wave(store, stage, model, requests, self.config.vllm)
        return done + (self._run_http(store, stage, rest) if rest else 0)

    def _run_http(self, store: BatchStore, stage: str, pending: dict[str, dict[str, Any]]) -> int:
        """The requests for OpenAI-compatible endpoints, answered by ``map_batches`` workers."""
        import ray.data

        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        llm = self.llm
        base_url = llm.base_url or os.environ.get("OPENAI_BASE_URL") or None
        # key order kept: a JSON schema's property order is part of the request (constrained decoding follows it)
        items = [{"id": rid, "body": json.dumps(pending[rid], ensure_ascii=False)} for rid in sorted(pending)]
        size = self.config.batch_size
        blocks = min(len(items), max(self.config.workers, -(-len(items) // size)))
        ds = ray.data.from_items(items, override_num_blocks=max(1, blocks))
        with warnings.catch_warnings():
            # Ray 2.60 deprecates every way to pass task retry options (removed in 2.64, hence the extra's
            # upper bound) and names no replacement; without them a crashing task is retried for ever
            warnings.simplefilter("ignore", DeprecationWarning)
            ds = ds.map_batches(
                answer_batch,
                # one task per block (blocks hold at most batch_size requests): with an int, Ray Data bundles
                # smaller blocks into one task, so a small wave ran as one task, saved only when all was answered
                batch_size=None,
                batch_format="numpy",
                compute=ray.data.TaskPoolStrategy(size=self.config.workers),
                # a raising or crashed task is retried task_retries times, then the iteration below raises
                # and its requests are recorded as failed
                max_retries=self.config.task_retries,
                retry_exceptions=True,
                fn_kwargs={
                    "base_url": base_url,
                    "timeout_s": llm.timeout_s,
                    "max_retries": llm.max_retries,
                    "concurrency": llm.concurrency,
                },
            )
        models = ",".join(sorted({f"openai/{b['model']}" for b in pending.values()}))
        answered: set[str] = set()
        try:
            # each block as it arrives: a batch_size re-batches across blocks and prefetching holds a block
            # back until the next one is done, so a killed driver lost answers that had arrived
            for block in ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=0):
                answers = [
                    (str(rid), int(code) or None, str(resp) or None, str(err) or None)
                    for rid, code, resp, err in zip(
                        block["id"], block["status_code"], block["response"], block["error"]
                    )
                ]
                store.save_answers(stage, models, pending, answers, source="ray")
                answered.update(a[0] for a in answers)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # a worker that failed past its retries: its requests fail, as data
            why = f"ray worker failed: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            store.fail_unanswered(stage, models, pending, answered, why, source="ray")
        return len(answered)

    def close(self) -> None:
        if self._started_here:
            import ray

            ray.shutdown()
            self._started_here = False


__all__ = ["INSTALL_HINT", "RayExecutor", "answer_batch", "check_reachable", "require_ray"]
