"""The scripted OpenAI-compatible test server (real HTTP on 127.0.0.1) and its pytest fixture.

The server itself lives in clawgen.sim.llmserver (``clawgen sim --model mock`` uses it too).
Queue replies with ``server.push(Reply.text("hi"), Reply.error(500), ...)``; every request is
in ``server.requests`` (method, path, headers, body, parsed json).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from clawgen.sim.llmserver import LLMServer, Reply, Request, completion, tool_call, wait_for

__all__ = ["LLMServer", "Reply", "Request", "completion", "llm_server", "tool_call", "wait_for"]


@pytest.fixture
def llm_server() -> Iterator[LLMServer]:
    server = LLMServer()
    try:
        yield server
    finally:
        server.close()
