"""Errors: one class per kind of failure, chosen by the server's stable error code.

Every error the server answers carries an HTTP status, a code (``dimension_mismatch``,
``collection_not_found``, ``rate_limited`` …, listed in docs/HTTP.md) and the server's message.
Catch :class:`TidepoolError` for all of them, or a subclass for one kind.
"""
from __future__ import annotations

from typing import Dict, Optional, Type

__all__ = [
    "TidepoolError", "BadRequestError", "DimensionMismatchError", "AuthenticationError", "PermissionDeniedError",
    "NotFoundError", "CollectionNotFoundError", "ConflictError", "CollectionExistsError", "PayloadTooLargeError",
    "RateLimitedError", "UnavailableError", "DeadlineExceededError", "ServerError", "TidepoolConnectionError",
    "error_for",
]


class TidepoolError(Exception):
    """An error answered by the server (or a connection that failed): status, code and message."""

    def __init__(self, status: int, code: str, message: str, retry_after: Optional[float] = None):
        super().__init__(f"{status} {code}: {message}" if status else f"{code}: {message}")
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


class BadRequestError(TidepoolError):
    """400: the request was refused and changed nothing (invalid argument, malformed JSON, a limit passed)."""


class DimensionMismatchError(BadRequestError):
    """400 ``dimension_mismatch``: a vector's length is not the collection's dimension."""


class AuthenticationError(TidepoolError):
    """401: no API key, or an unknown one."""


class PermissionDeniedError(TidepoolError):
    """403: the key may not do this (a read-only key writing), or the database is read-only."""


class NotFoundError(TidepoolError):
    """404: a collection, version or snapshot that does not exist."""


class CollectionNotFoundError(NotFoundError):
    """404 ``collection_not_found``."""


class ConflictError(TidepoolError):
    """409: something of that name exists already, or exists with other settings."""


class CollectionExistsError(ConflictError):
    """409 ``collection_exists``."""


class PayloadTooLargeError(TidepoolError):
    """413 ``body_too_large``: the request body passed the server's limit (bulk upserts split and resend)."""


class RateLimitedError(TidepoolError):
    """429: too many requests in flight, a collection's rate, or an indexing backlog; ``retry_after`` says when."""


class UnavailableError(TidepoolError):
    """503: shutting down, no writer, storage unreachable; retried by the client for idempotent calls."""


class DeadlineExceededError(UnavailableError):
    """503 ``deadline_exceeded``: the request ran past the server's deadline."""


class ServerError(TidepoolError):
    """500: the server failed (``storage_error`` names the file and offset of damage)."""


class TidepoolConnectionError(TidepoolError):
    """No answer: the connection failed or timed out (status 0)."""

    def __init__(self, message: str):
        super().__init__(0, "connection_error", message)


_BY_CODE: Dict[str, Type[TidepoolError]] = {
    "dimension_mismatch": DimensionMismatchError,
    "collection_not_found": CollectionNotFoundError,
    "collection_exists": CollectionExistsError,
    "deadline_exceeded": DeadlineExceededError,
}
_BY_STATUS: Dict[int, Type[TidepoolError]] = {
    400: BadRequestError, 401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError,
    409: ConflictError, 413: PayloadTooLargeError, 429: RateLimitedError, 503: UnavailableError,
}


def error_for(status: int, code: str, message: str, retry_after: Optional[float] = None) -> TidepoolError:
    """The most specific error class for an answer: by code, then by status."""
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status) or (ServerError if status >= 500 else TidepoolError)
    return cls(status, code, message, retry_after)
