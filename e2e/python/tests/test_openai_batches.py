"""openai-python's Batch API on the gateway (issue 25 §2), with the client's default settings:
files.create → batches.create → batches.retrieve until done → files.content for a 200-line file.
The output has a line per request whose custom_id matches and whose body openai-python's own
ChatCompletion model accepts. Runs once, on the OpenAI-backend stack (like the files tests).
"""

from __future__ import annotations

import json
import time

import openai
import pytest
from openai.types.chat import ChatCompletion

from support import API_KEY, API_URL, BACKEND, MODEL

pytestmark = pytest.mark.skipif(BACKEND != "openai", reason="the batch path is the same for both: run once")

FINAL = {"completed", "failed", "expired", "cancelled"}


def line(i: int) -> str:
    return json.dumps(
        {
            "custom_id": f"py-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": MODEL, "messages": [{"role": "user", "content": f"python batch {i}"}], "max_tokens": 4},
        }
    )


def test_200_requests_come_back_as_chat_completions_with_their_custom_ids():
    c = openai.OpenAI(base_url=f"{API_URL}/v1", api_key=API_KEY)
    data = "\n".join(line(i) for i in range(200)).encode()
    file = c.files.create(file=("batch.jsonl", data), purpose="batch")
    batch = c.batches.create(
        input_file_id=file.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"suite": "python"},
    )
    assert batch.status == "in_progress"
    assert batch.request_counts is not None and batch.request_counts.total == 200
    assert batch.metadata == {"suite": "python"}

    deadline = time.monotonic() + 60
    while batch.status not in FINAL and time.monotonic() < deadline:
        time.sleep(0.2)
        batch = c.batches.retrieve(batch.id)
    assert batch.status == "completed"
    assert batch.request_counts.completed == 200
    assert batch.request_counts.failed == 0
    assert batch.error_file_id is None
    assert batch.output_file_id is not None

    rows = [json.loads(r) for r in c.files.content(batch.output_file_id).text.splitlines() if r]
    assert len(rows) == 200
    assert sorted(r["custom_id"] for r in rows) == sorted(f"py-{i}" for i in range(200))
    for r in rows:
        assert r["error"] is None
        assert r["response"]["status_code"] == 200
        completion = ChatCompletion.model_validate(r["response"]["body"])
        assert completion.object == "chat.completion"
        assert completion.choices[0].message.content
        assert completion.usage is not None and completion.usage.completion_tokens == 4

    assert batch.id in [b.id for b in c.batches.list(limit=10)]


def test_a_bad_line_fails_the_batch_with_the_line_in_its_errors():
    c = openai.OpenAI(base_url=f"{API_URL}/v1", api_key=API_KEY)
    file = c.files.create(file=("bad.jsonl", f"{line(0)}\nnot json\n".encode()), purpose="batch")
    batch = c.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert batch.status == "failed"
    assert batch.errors is not None and batch.errors.data is not None
    assert [(e.code, e.line) for e in batch.errors.data] == [("invalid_json_line", 2)]
    with pytest.raises(openai.ConflictError):
        c.batches.cancel(batch.id)
