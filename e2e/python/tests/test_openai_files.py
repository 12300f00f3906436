"""openai-python's Files API on the gateway's /v1/files (issue 25 §1), sync and async, with the
client's default settings and the gateway's default limits: upload a batch input file, read it
back byte for byte, list, delete; another user's file is not found, a purpose other than batch is
a BadRequestError. Files do not reach a backend, so this runs once, on the OpenAI-backend stack.
"""

from __future__ import annotations

import io
import json

import openai
import pytest

from support import API_KEY, API_URL, BACKEND, MODEL, new_key

pytestmark = pytest.mark.skipif(BACKEND != "openai", reason="files never reach a backend: run once")


def client(api_key: str = API_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{API_URL}/v1", api_key=api_key)


def batch_file(lines: int, text: str = "Résumé this, please 📄") -> bytes:
    """A batch input file: LF and CRLF line ends, non-ASCII text, no final newline."""
    rows = [
        json.dumps(
            {
                "custom_id": f"req-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": MODEL, "messages": [{"role": "user", "content": f"{text} {i}"}], "max_tokens": 8},
            },
            ensure_ascii=False,
        )
        for i in range(lines)
    ]
    return "".join(row + ("\r\n" if i % 2 else "\n") for i, row in enumerate(rows)).rstrip().encode()


def test_upload_read_list_delete_round_trip_over_the_body_limit():
    c = client()
    data = batch_file(8000)  # about 1.5 MB: over BODY_LIMIT_BYTES (1 MiB), which uploads do not have
    assert len(data) > 1024 * 1024
    created = c.files.create(file=("input.jsonl", data), purpose="batch")
    assert created.id.startswith("file-")
    assert created.object == "file"
    assert created.bytes == len(data)
    assert created.filename == "input.jsonl"
    assert created.purpose == "batch"
    assert created.status == "processed"
    assert created.expires_at == created.created_at + 30 * 86400

    assert c.files.retrieve(created.id) == created
    content = c.files.content(created.id)
    assert content.content == data  # byte for byte
    assert content.response.headers["content-length"] == str(len(data))

    assert created.id in [f.id for f in c.files.list()]
    assert created.id in [f.id for f in c.files.list(purpose="batch")]
    assert created.id not in [f.id for f in c.files.list(purpose="batch_output")]

    deleted = c.files.delete(created.id)
    assert deleted.id == created.id and deleted.deleted is True and deleted.object == "file"
    with pytest.raises(openai.NotFoundError):
        c.files.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        c.files.content(created.id)


def test_list_pages_with_limit_and_after_newest_first():
    c = client(new_key("enterprise"))  # a user of its own: its list holds only these
    ids = [c.files.create(file=(f"{i}.jsonl", io.BytesIO(batch_file(1))), purpose="batch").id for i in range(3)]
    first = c.files.list(limit=2)
    assert [f.id for f in first.data] == [ids[2], ids[1]]
    assert first.has_more is True
    assert [f.id for f in first.get_next_page().data] == [ids[0]]
    assert [f.id for f in c.files.list(limit=1)] == list(reversed(ids))  # auto-pagination, page by page
    assert [f.id for f in c.files.list(order="asc")] == ids


def test_another_users_file_is_not_found():
    mine = client().files.create(file=("mine.jsonl", batch_file(1)), purpose="batch")
    theirs = client(new_key("enterprise"))
    with pytest.raises(openai.NotFoundError) as err:
        theirs.files.retrieve(mine.id)
    assert err.value.code == "not_found"
    with pytest.raises(openai.NotFoundError):
        theirs.files.content(mine.id)
    with pytest.raises(openai.NotFoundError):
        theirs.files.delete(mine.id)
    assert mine.id not in [f.id for f in theirs.files.list()]
    assert client().files.retrieve(mine.id).id == mine.id


def test_a_purpose_other_than_batch_is_a_bad_request():
    with pytest.raises(openai.BadRequestError) as err:
        client().files.create(file=("a.jsonl", batch_file(1)), purpose="fine-tune")
    assert err.value.status_code == 400
    assert err.value.param == "purpose"
    assert "batch" in err.value.message


async def test_async_client_round_trip():
    c = openai.AsyncOpenAI(base_url=f"{API_URL}/v1", api_key=API_KEY)
    data = batch_file(3, "async")
    created = await c.files.create(file=("async.jsonl", data), purpose="batch")
    assert (await c.files.content(created.id)).content == data
    assert (await c.files.delete(created.id)).deleted is True
    await c.close()
