"""Errors that carry an HTTP status and a stable machine-readable code.

Every layer raises these; the server turns them into JSON, the CLI into one line.
"""

from __future__ import annotations

import errno


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


class ServerBusy(BridgeError):
    """The server holds as many upload bytes as it may for now (Retry-After says when)."""

    status = 503
    code = "busy"


class Cancelled(BridgeError):
    status = 409
    code = "cancelled"


class OutOfMemory(BridgeError):
    status = 507
    code = "out_of_memory"


class DiskFull(BridgeError):
    status = 507
    code = "disk_full"


def status_for_code(code: str) -> int:
    """The HTTP status of an error code, for errors that crossed a thread as JSON."""
    stack: list[type[BridgeError]] = [BridgeError]
    while stack:
        cls = stack.pop()
        if cls.code == code:
            return cls.status
        stack.extend(cls.__subclasses__())
    return 500


def is_out_of_memory(error: BaseException) -> bool:
    """Whether an exception means an allocation failed: Python's MemoryError, and the
    libraries' own ways to say it, which are not MemoryErrors (OpenCV's cv2.error
    "Insufficient memory", torch's OutOfMemoryError and CPU allocator RuntimeError)."""
    if isinstance(error, MemoryError):
        return True
    module = type(error).__module__ or ""
    text = str(error)
    if module.startswith("cv2"):
        return "Insufficient memory" in text
    if module.startswith("torch") or isinstance(error, RuntimeError):
        return (type(error).__name__ == "OutOfMemoryError" or "out of memory" in text.lower()
                or "can't allocate memory" in text)
    return False


def is_disk_full(error: BaseException) -> bool:
    """Whether a write failed for want of space (or a file-size limit), not for a bug."""
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def disk_full(error: OSError) -> DiskFull:
    where = f" while writing {error.filename}" if error.filename else ""
    return DiskFull(f"the disk is full{where} ({error.strerror}); free some space and try again")
