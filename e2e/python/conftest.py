"""Skips everything when the runner (e2e/src/python/pytest.ts) did not start a stack."""

from __future__ import annotations

import pytest

from support import API_URL


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if API_URL:
        return
    skip = pytest.mark.skip(reason="LLMGW_API_URL is not set: run through e2e/src/python/*.test.ts")
    for item in items:
        item.add_marker(skip)
