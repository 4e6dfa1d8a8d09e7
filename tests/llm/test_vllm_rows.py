"""Request bodies → ``ray.data.llm`` vLLM processor rows, and output rows → chat completions (issue 15)."""

from __future__ import annotations

import json

from persona_testbed.llm.backends.base import StructuredRequest
from persona_testbed.llm.deferred import reply_from_body, request_body
from persona_testbed.llm.types import ChatParams
from persona_testbed.llm.vllm_rows import (
    ERROR_COLUMN,
    answer_from_output,
    postprocess,
    preprocess,
    sampling_params,
)

SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Is tea better?"}]


def _body(**kw):
    structured = kw.pop("structured", None)
    return request_body("Qwen/Qwen2.5-0.5B-Instruct", MESSAGES, ChatParams(**kw), structured)


def test_sampling_params_carry_every_setting_the_openai_body_has():
    body = _body(temperature=0.3, top_p=0.9, max_tokens=40, seed=7, stop=["\n\n"])
    assert sampling_params(body) == {
        "temperature": 0.3,
        "top_p": 0.9,
        "max_tokens": 40,
        "seed": 7,
        "stop": ["\n\n"],
    }
    structured = _body(structured=StructuredRequest(name="Verdict", schema=SCHEMA))
    assert sampling_params(structured)["structured_outputs"] == {"json": SCHEMA}
    assert sampling_params({**body, "stop": "END"})["stop"] == ["END"]
    assert sampling_params({**body, "response_format": {"type": "json_object"}})["structured_outputs"] == {
        "json_object": True
    }
    lp = sampling_params(_body(logprobs=True, top_logprobs=3))
    assert lp["logprobs"] == 3
    assert "seed" not in sampling_params(_body(seed=None))


def test_preprocess_keeps_id_and_body_and_passes_no_model_column():
    body = _body(max_tokens=12)
    row = preprocess({"id": "abc", "body": json.dumps(body)})
    assert row["id"] == "abc" and json.loads(row["body"]) == body
    assert row["messages"] == MESSAGES
    assert row["sampling_params"]["max_tokens"] == 12
    assert "model" not in row  # a per-row model is a LoRA request in ray.data.llm


def _output(body, text, generated, **extra):
    return {"id": "r1", "body": json.dumps(body), "generated_text": text, "num_input_tokens": 21,
            "num_generated_tokens": generated, **extra}  # fmt: skip


def test_output_row_becomes_a_chat_completion_the_client_reads_back():
    body = _body(max_tokens=10)
    code, response, error = answer_from_output(_output(body, "Tea, mostly.", 4))
    assert (code, error) == (200, None)
    reply = reply_from_body(json.loads(response))
    assert reply.text == "Tea, mostly."
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (21, 4)
    assert reply.finish_reason == "stop"
    # the whole budget used: cut off, so the truncation re-asks see it
    _, response, _ = answer_from_output(_output(body, "Tea is a drink that many", 10))
    assert reply_from_body(json.loads(response)).finish_reason == "length"


def test_an_engine_error_row_is_an_error_recorded_as_data():
    body = _body()
    code, response, error = answer_from_output(
        {"id": "r1", "body": json.dumps(body), ERROR_COLUMN: "CUDA out of memory\n  at step 3"}
    )
    assert code is None and response is None
    assert error == "vllm: CUDA out of memory at step 3"


def test_logprobs_become_openai_logprobs_content():
    body = _body(max_tokens=5, logprobs=True, top_logprobs=2)
    row = _output(
        body,
        "Yes",
        1,
        generated_tokens=[42],
        logprobs=[
            {
                "42": {"logprob": -0.1, "rank": 1, "decoded_token": "Yes"},
                "7": {"logprob": -2.5, "rank": 2, "decoded_token": "No"},
            }
        ],
    )
    reply = reply_from_body(json.loads(answer_from_output(row)[1]))
    assert reply.logprobs == [
        {
            "token": "Yes",
            "logprob": -0.1,
            "top_logprobs": [{"token": "Yes", "logprob": -0.1}, {"token": "No", "logprob": -2.5}],
        }
    ]
    # not asked for: not reported, even if the engine sent them
    plain = _output(_body(max_tokens=5), "Yes", 1, generated_tokens=[42], logprobs=row["logprobs"])
    assert reply_from_body(json.loads(answer_from_output(plain)[1])).logprobs is None


def test_postprocess_row_has_the_columns_the_driver_saves():
    out = postprocess(_output(_body(max_tokens=50), "Tea.", 2))
    assert set(out) == {"id", "status_code", "response", "error"}
    assert out["id"] == "r1" and out["status_code"] == 200 and out["error"] == ""


def test_rows_gathered_in_a_table_read_nan_as_no_error():
    from persona_testbed.llm.vllm_rows import error_of

    body = _body(max_tokens=50)
    row = _output(body, "Tea.", 2, **{ERROR_COLUMN: float("nan")})
    assert error_of(row) == "" and error_of({ERROR_COLUMN: None}) == ""
    assert answer_from_output(row)[0] == 200
