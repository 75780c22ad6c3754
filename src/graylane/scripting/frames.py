"""Length-prefixed JSON frames over pipes, shared by the script worker and the pool that talks to it.

A frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON. The reading side gives a
deadline (a `time.monotonic()` value, or None for "wait as long as it takes") and a size limit, so a
worker that hangs or sends too much cannot hold or flood its reader. Must not: know what the frames mean.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any

__all__ = ["FrameError", "FrameTimeout", "read_frame", "write_frame"]

_HEADER = struct.Struct(">I")
_CHUNK = 1 << 16


class FrameError(Exception):
    """The other side closed the pipe, or sent something that is not a frame."""


class FrameTimeout(FrameError):
    """The deadline passed before the frame was complete."""


def write_frame(fd: int, message: Any, deadline: float | None = None) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    _write_all(fd, _HEADER.pack(len(data)) + data, deadline)


def read_frame(fd: int, limit: int, deadline: float | None = None) -> Any | None:
    """The next message, or None when the pipe closed cleanly before a frame began."""
    header = _read_exact(fd, _HEADER.size, deadline, eof_ok=True)
    if header is None:
        return None
    (length,) = _HEADER.unpack(header)
    if length > limit:
        raise FrameError(f"a frame of {length} bytes, more than the limit of {limit}")
    data = _read_exact(fd, length, deadline, eof_ok=False)
    assert data is not None
    try:
        return json.loads(data)
    except ValueError as err:
        raise FrameError(f"a frame that is not JSON: {err}") from None


def _wait(fd: int, event: int, deadline: float | None) -> None:
    poller = select.poll()
    poller.register(fd, event)
    while True:
        timeout = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
        if poller.poll(timeout):
            return
        if deadline is not None and time.monotonic() >= deadline:
            raise FrameTimeout("no answer before the deadline")


def _read_exact(fd: int, size: int, deadline: float | None, *, eof_ok: bool) -> bytes | None:
    parts: list[bytes] = []
    missing = size
    while missing:
        _wait(fd, select.POLLIN, deadline)
        chunk = os.read(fd, min(missing, _CHUNK))
        if not chunk:
            if eof_ok and missing == size:
                return None
            raise FrameError("the pipe closed in the middle of a frame" if parts else "the pipe closed")
        parts.append(chunk)
        missing -= len(chunk)
    return b"".join(parts)


def _write_all(fd: int, data: bytes, deadline: float | None) -> None:
    view = memoryview(data)
    while view:
        _wait(fd, select.POLLOUT, deadline)
        try:
            written = os.write(fd, view[:_CHUNK])
        except BrokenPipeError:
            raise FrameError("the pipe closed") from None
        view = view[written:]
