"""Request bodies: ``Content-Encoding`` identity, gzip or zstd, bounded after decompression.

The compressed size is bounded by whoever reads the request (the route stops reading past
``max_body_bytes``); here the decompressed size is bounded too, without ever holding more than
``max_decoded_bytes + 1`` bytes: gzip streams through :func:`zlib.decompressobj` with
``max_length``; zstd decompresses into a buffer of a fixed size (cramjam), first a small one
sized from the input, then, only if that was too small, one of the limit. A zip bomb is refused
with :class:`~stream_app.serve.errors.BodyRejected` (``too_large``) after at most that much work.
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


def _unzstd(data: bytes, max_decoded_bytes: int) -> bytes:
    guess = min(max_decoded_bytes + 1, max(_MIN_GUESS_BYTES, len(data) * _FIRST_GUESS_RATIO))
    while True:
        buffer = bytearray(guess)
        try:
            written = cramjam.zstd.decompress_into(data, buffer)
        except cramjam.DecompressionError as exc:
            if "whole buffer" not in str(exc):  # cramjam: the output did not fit
                raise BodyRejected(f"corrupt zstd body: {exc}", kind="corrupt") from exc
            if guess > max_decoded_bytes:
                raise _too_large(max_decoded_bytes) from None
            guess = max_decoded_bytes + 1
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
