"""``vllm/<model>`` on the Ray executor: a wave's requests run in vLLM engines on GPU workers.

The pending requests of one ``vllm/`` model become a Ray dataset that goes through ``ray.data.llm``'s vLLM
engine processor (chat template → tokenize → engine → detokenize; ``llm.vllm_rows`` maps our request bodies
to its rows and its output rows back to chat completions). The driver saves the answers into
``RUN/batch/batch.db`` as they stream back, exactly like the HTTP path of ``ray_executor``: the stage then
replays them through the client (same validation, re-asks, cache keys and call-log rows). A row the engine
fails on is an error recorded as data (``should_continue_on_error``); a processor that fails as a whole
records the rest of the wave as failed.

Needs ``pip install 'persona-testbed[vllm]'`` (Ray Data LLM and vLLM) on the driver and the workers, and at
least one GPU in the Ray cluster. ``ray`` is imported only here and in ``ray_executor``, inside functions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from ..llm.deferred import BatchStore
from ..llm.models import parse_model
from ..llm.vllm_rows import answer_from_output, error_of, postprocess, preprocess
from .config import VLLMConfig

VLLM_HINT = "pip install 'persona-testbed[vllm]' (or pip install 'ray[data,llm]', which brings vLLM)"


def require_vllm() -> None:
    """``UserError`` with the install command when Ray Data LLM or vLLM is missing here."""
    missing = [name for name in ("ray", "vllm") if find_spec(name) is None]
    if missing:
        raise UserError(
            f"vllm/ models on the ray executor need {' and '.join(missing)}, not installed: {VLLM_HINT}"
        )


def model_source(model: str) -> str:
    """The vLLM ``model_source`` of a ``vllm/`` model string: a Hugging Face id, or a path (``/``, ``~``,
    ``.``-prefixed) made absolute."""
    name = parse_model(model).name
    if name.startswith(("/", "~", ".")):
        return str(Path(name).expanduser().resolve())
    return name


def build_vllm_processor(source: str, cfg: VLLMConfig) -> Callable[[Any], Any]:
    """The ``ray.data.llm`` vLLM processor for ``source``: a function from our request dataset
    (``{"id", "body"}`` rows) to output rows ``{"id", "status_code", "response", "error"}`` (and
    ``__inference_error__`` rows for requests the engine failed on)."""
    import ray
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    require_vllm()
    gpus = float(ray.cluster_resources().get("GPU", 0))
    if gpus < 1:
        raise UserError(
            f"vllm/{source}: the Ray cluster has no GPU (ray.cluster_resources() lists none); start Ray on GPU "
            "machines or connect to a cluster with GPUs (RAY_ADDRESS / [execution.ray] address)"
        )
    config = vLLMEngineProcessorConfig(
        model_source=source,
        engine_kwargs=dict(cfg.engine_kwargs),
        concurrency=cfg.replicas,
        batch_size=cfg.batch_size,
        accelerator_type=cfg.accelerator_type,
        should_continue_on_error=True,
    )
    return build_processor(config, preprocess=preprocess, postprocess=postprocess)  # type: ignore[no-any-return]


def _answer(row: dict[str, Any]) -> tuple[str, int | None, str | None, str | None]:
    """A processor output row as ``(id, status_code, response, error)``."""
    rid = str(row["id"])
    if error_of(row):  # error rows skip postprocess and come back with the input columns
        return (rid, *answer_from_output(row))
    code = int(row["status_code"]) or None
    response, error = row.get("response"), row.get("error")
    return (
        rid,
        code,
        response if isinstance(response, str) and response else None,
        error if isinstance(error, str) and error else None,
    )


def run_vllm_wave(
    store: BatchStore, stage: str, model: str, pending: dict[str, dict[str, Any]], cfg: VLLMConfig
) -> int:
    """Answer ``pending`` (requests of the ``vllm/`` model ``model``) with vLLM engines on Ray; each output
    block is saved to ``store`` as it arrives. Returns how many were answered; a request left without an
    answer is recorded as failed, so the stage never defers it again."""
    import ray.data

    processor = build_vllm_processor(model_source(model), cfg)
    items = [{"id": rid, "body": json.dumps(pending[rid], ensure_ascii=False)} for rid in sorted(pending)]
    answered: set[str] = set()
    try:
        # block by block as they arrive, nothing prefetched: a killed driver keeps every answer that arrived
        output = processor(ray.data.from_items(items))
        for block in output.iter_batches(batch_size=None, batch_format="pandas", prefetch_batches=0):
            answers = [_answer(row) for row in block.to_dict("records")]
            store.save_answers(stage, model, pending, answers, source="vllm")
            answered.update(a[0] for a in answers)
    except (KeyboardInterrupt, SystemExit, UserError):
        raise
    except Exception as exc:  # the processor failed as a whole: the rest of the wave fails, as data
        why = f"vllm processor failed: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        store.fail_unanswered(stage, model, pending, answered, why, source="vllm")
        return len(answered)
    why = "vllm: the processor returned no row for this request"
    store.fail_unanswered(stage, model, pending, answered, why, source="vllm")
    return len(answered)


__all__ = ["VLLM_HINT", "build_vllm_processor", "model_source", "require_vllm", "run_vllm_wave"]
