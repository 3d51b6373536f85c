"""Errors that carry an HTTP status and a stable machine-readable code.

Every layer raises these; the server turns them into JSON, the CLI into one line.
"""

from __future__ import annotations


class BridgeError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return {"error": body}


class InvalidInput(BridgeError):
    status = 400
    code = "invalid_input"


class InvalidParams(BridgeError):
    status = 400
    code = "invalid_params"


class NotFound(BridgeError):
    status = 404
    code = "not_found"


class UnknownOperation(BridgeError):
    status = 404
    code = "unknown_operation"


class TooLarge(BridgeError):
    status = 413
    code = "too_large"


class UnsupportedFormat(BridgeError):
    status = 415
    code = "unsupported_format"


class ModelMissing(BridgeError):
    """A model the operation needs is not installed; details say how to get it."""

    status = 409
    code = "model_missing"


class ModelError(BridgeError):
    status = 500
    code = "model_error"


class Busy(BridgeError):
    status = 429
    code = "queue_full"


class Cancelled(BridgeError):
    status = 409
    code = "cancelled"


class OutOfMemory(BridgeError):
    status = 507
    code = "out_of_memory"


def status_for_code(code: str) -> int:
    """The HTTP status of an error code, for errors that crossed a thread as JSON."""
    stack: list[type[BridgeError]] = [BridgeError]
    while stack:
        cls = stack.pop()
        if cls.code == code:
            return cls.status
        stack.extend(cls.__subclasses__())
    return 500
