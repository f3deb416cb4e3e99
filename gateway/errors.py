"""The gateway's error vocabulary.

Every error carries a stable ``reason`` code (SCREAMING_SNAKE) that clients may switch on. The gRPC
edge (``gateway.api.status``) is the only place that turns these into status codes; nothing below it
knows about gRPC.

A refusal that is a normal business answer (a pre-trade check that says no) is data in a response,
not one of these errors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One problem with one request field, named by its path ("order.limit_price")."""

    field: str
    description: str


class ExecgwError(Exception):
    """Root of every error the gateway raises on purpose."""

    reason: str = "EXECGW_ERROR"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class InvalidArgument(ExecgwError):
    """The request is malformed: one or more fields are missing or invalid."""

    reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        violations: Iterable[FieldViolation],
        *,
        reason: str | None = None,
        message: str | None = None,
    ) -> None:
        self.violations = tuple(violations)
        if not self.violations:
            raise ValueError("InvalidArgument needs at least one field violation")
        text = message or "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        super().__init__(text, reason=reason)

    @classmethod
    def field(cls, field: str, description: str, *, reason: str | None = None) -> InvalidArgument:
        """Build the error for a single bad field."""
        return cls([FieldViolation(field, description)], reason=reason)


class FailedPrecondition(ExecgwError):
    """The request is valid but refused in the current state."""

    reason = "FAILED_PRECONDITION"


class NotFound(ExecgwError):
    """The request names something the gateway does not know."""

    reason = "NOT_FOUND"


class AlreadyExists(ExecgwError):
    """The request duplicates something recorded with different content."""

    reason = "ALREADY_EXISTS"


class Unavailable(ExecgwError):
    """A dependency (the database) cannot serve now; the client may retry."""

    reason = "UNAVAILABLE"


class NotImplementedYet(ExecgwError):
    """The RPC is declared in the contract but its behaviour has not been built."""

    reason = "NOT_IMPLEMENTED"


class Unauthenticated(ExecgwError):
    """The call carries no valid credentials (no client certificate, no or an unknown token)."""

    reason = "UNAUTHENTICATED"


class PermissionDenied(ExecgwError):
    """The caller is known but its roles or accounts do not allow this call."""

    reason = "PERMISSION_DENIED"


class ResourceExhausted(ExecgwError):
    """The caller is over a limit; ``retry_after`` seconds (when known) until it may retry."""

    reason = "RESOURCE_EXHAUSTED"

    def __init__(
        self, message: str, *, reason: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, reason=reason)
        self.retry_after = retry_after


class StreamIdle(ExecgwError):
    """A stream went without client activity for longer than the idle timeout."""

    reason = "STREAM_IDLE"


class ConfigurationError(ExecgwError):
    """Settings are invalid; ``problems`` lists every bad key and value."""

    reason = "INVALID_CONFIGURATION"

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid configuration:\n  " + "\n  ".join(self.problems))
