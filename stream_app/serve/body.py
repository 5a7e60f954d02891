"""Request bodies: ``Content-Encoding`` identity, gzip or zstd, bounded after decompression.

The compressed size is bounded by whoever reads the request (the route stops reading past
``max_body_bytes``); here the decompressed size is bounded too, without ever holding more than
``max_decoded_bytes + 1`` bytes: gzip streams through :func:`zlib.decompressobj` with
``max_length``; zstd decompresses into a buffer of a fixed size (cramjam), first one of the size
the frame declares (or one sized from the input), growing 4x per attempt up to the limit. A zip
bomb is refused with :class:`~stream_app.serve.errors.BodyRejected` (``too_large``) after at
most that much work.
"""

from __future__ import annotations

import zlib

import cramjam

from stream_app.serve.errors import BodyRejected

__all__ = ["ENCODINGS", "decode_body"]

ENCODINGS = ("identity", "gzip", "zstd")

_GZIP_WBITS = 16 + zlib.MAX_WBITS
_FIRST_GUESS_RATIO = 16
_MIN_GUESS_BYTES = 64 * 1024


def _too_large(max_decoded_bytes: int) -> BodyRejected:
    return BodyRejected(
        f"the body decompresses to more than {max_decoded_bytes} bytes", kind="too_large"
    )


def _gunzip(data: bytes, max_decoded_bytes: int) -> bytes:
    out = bytearray()
    pending = data
    while pending:
        stream = zlib.decompressobj(_GZIP_WBITS)
        try:
            out += stream.decompress(pending, max_decoded_bytes + 1 - len(out))
        except zlib.error as exc:
            raise BodyRejected(f"corrupt gzip body: {exc}", kind="corrupt") from exc
        if len(out) > max_decoded_bytes or stream.unconsumed_tail:
            raise _too_large(max_decoded_bytes)
        if not stream.eof:
            raise BodyRejected("corrupt gzip body: truncated", kind="corrupt")
        pending = stream.unused_data  # concatenated gzip members
    return bytes(out)


def _declared_size(data: bytes) -> int | None:
    """The content size a zstd frame header declares, if it does (RFC 8878, 3.1.1.1)."""
    if len(data) < 6 or data[:4] != b"\x28\xb5\x2f\xfd":
        return None
    descriptor = data[4]
    fcs_flag, single_segment, dict_flag = descriptor >> 6, (descriptor >> 5) & 1, descriptor & 3
    size_bytes = (0, 2, 4, 8)[fcs_flag] if fcs_flag else (1 if single_segment else 0)
    if not size_bytes:
        return None
    start = 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[dict_flag]
    field = data[start : start + size_bytes]
    if len(field) < size_bytes:
        return None
    size = int.from_bytes(field, "little")
    return size + 256 if size_bytes == 2 else size


def _unzstd(data: bytes, max_decoded_bytes: int) -> bytes:
    limit = max_decoded_bytes + 1
    declared = _declared_size(data)
    if declared is not None and declared > max_decoded_bytes:
        raise _too_large(max_decoded_bytes)
    # A declared size is only a first guess (a frame may lie; zstd then fails on it); without
    # one, the buffer grows 4x per attempt up to the limit.
    guess = min(
        limit,
        declared + 1
        if declared is not None
        else max(_MIN_GUESS_BYTES, len(data) * _FIRST_GUESS_RATIO),
    )
    while True:
        buffer = bytearray(guess)
        try:
            written = cramjam.zstd.decompress_into(data, buffer)
        except cramjam.DecompressionError as exc:
            if "whole buffer" not in str(exc):  # cramjam: the output did not fit
                raise BodyRejected(f"corrupt zstd body: {exc}", kind="corrupt") from exc
            if guess >= limit:
                raise _too_large(max_decoded_bytes) from None
            guess = min(limit, guess * 4)
            continue
        if written > max_decoded_bytes:
            raise _too_large(max_decoded_bytes)
        return bytes(buffer[:written])


def decode_body(data: bytes, encoding: str | None, *, max_decoded_bytes: int) -> bytes:
    """The body as sent before compression; raises :class:`BodyRejected`."""
    name = (encoding or "identity").strip().lower()
    if name == "identity":
        if len(data) > max_decoded_bytes:
            raise _too_large(max_decoded_bytes)
        return data
    if name in ("gzip", "x-gzip"):
        return _gunzip(data, max_decoded_bytes)
    if name == "zstd":
        return _unzstd(data, max_decoded_bytes)
    raise BodyRejected(
        f"unsupported Content-Encoding {encoding!r}: use one of {', '.join(ENCODINGS)}",
        kind="encoding",
    )
