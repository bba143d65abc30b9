"""`ServeError`: a request the server refuses, with its HTTP status and an error type.

Rendered by the app as `{"error": {"message": ..., "type": ...}}` (the OpenAI error shape).
Raised where the fact is known: the cache (unknown adapter, failed load), the batcher (queue
full), the model runner (prompt too long) or the routes (limits, wrong task, API key).
"""

from __future__ import annotations

from ..errors import SpadaptError


class ServeError(SpadaptError):
    """An HTTP-level refusal: `status` (4xx), `type` (machine-readable), message (for people),
    and `headers` to send with it (e.g. `WWW-Authenticate` on a 401)."""

    def __init__(self, status: int, type: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.headers = headers or {}
