"""One HTTP call, described once and sent by the sync or the async client, with the retry rule
both share: 429 (refused before any work) always; 503, 502, 504 and lost connections only for calls
that are safe to repeat (reads, upserts with ids, deletes by id); a refused connection always."""
from __future__ import annotations

import gzip
import platform
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional

import httpx

from ._version import __version__
from ._wire import dumps
from .errors import TidepoolConnectionError, TidepoolError, error_for

USER_AGENT = f"tidepool-client/{__version__} python/{platform.python_version()} httpx/{httpx.__version__}"


def _identity(x: Any) -> Any:
    return x


@dataclass
class Call:
    """A request: method, path, JSON body (a dict, or bytes already encoded), whether it may be
    repeated, and how to read the answer."""

    method: str
    path: str
    body: Any = None
    idempotent: bool = True
    parse: Callable[[Any], Any] = field(default=_identity)

    def content(self) -> Optional[bytes]:
        if self.body is None:
            return None
        if isinstance(self.body, (bytes, bytearray)):
            return bytes(self.body)
        return dumps(self.body).encode("utf-8")


@dataclass
class RetryPolicy:
    """How often and how long to wait: exponential backoff with jitter, or the server's Retry-After."""

    max_retries: int = 5
    backoff: float = 0.25
    max_backoff: float = 8.0

    def delay(self, attempt: int, retry_after: Optional[float]) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff * 4)
        return min(self.max_backoff, self.backoff * (2 ** attempt)) * (0.5 + random.random() / 2)


def headers(api_key: Optional[str], extra: Optional[Dict[str, str]], compression: bool = False) -> Dict[str, str]:
    # Answers gzipped only when asked: on a fast network compressing costs more than it saves.
    h = {"User-Agent": USER_AGENT, "Content-Type": "application/json", "Accept": "application/json",
         "Accept-Encoding": "gzip" if compression else "identity"}
    if api_key:
        h["Authorization"] = f"Bearer {api_key}"
    h.update(extra or {})
    return h


GZIP_FROM = 1024


def body(content: Optional[bytes], compression: bool) -> "tuple[Optional[bytes], Dict[str, str]]":
    """A request body, gzipped (level 1: fast) when compression is on and it is 1 KiB or more."""
    if compression and content is not None and len(content) >= GZIP_FROM:
        return gzip.compress(content, compresslevel=1), {"Content-Encoding": "gzip"}
    return content, {}


def answer_error(r: httpx.Response) -> TidepoolError:
    """The server's error object (``{"error": {"code", "message"}}``) as the matching exception."""
    try:
        data = r.json()
    except ValueError:
        data = None
    err = data.get("error", {}) if isinstance(data, dict) else {}
    retry_after: Optional[float] = None
    if "retry-after" in r.headers:
        try:
            retry_after = float(r.headers["retry-after"])
        except ValueError:
            pass
    message = err.get("message") if isinstance(err, dict) else None
    code = err.get("code") if isinstance(err, dict) else None
    return error_for(r.status_code, code or "http_error", message or r.text[:500] or r.reason_phrase, retry_after)


def retryable_answer(call: Call, status: int) -> bool:
    return status == 429 or (call.idempotent and status in (502, 503, 504))


def retryable_exception(call: Call, e: Exception) -> bool:
    return isinstance(e, httpx.ConnectError) or (call.idempotent and isinstance(e, httpx.TransportError))


def connection_error(call: Call, e: Exception) -> TidepoolConnectionError:
    return TidepoolConnectionError(f"{call.method} {call.path}: {type(e).__name__}: {e}")


def parse(call: Call, r: httpx.Response) -> Any:
    return call.parse(r.json() if r.content else {})
