"""Request bodies: Content-Encoding decoded here, bounded, every failure a clear 4xx.

Why not aiohttp's own decompression: it passes an encoding it does not know (br
without brotli, zstd, anything) through as if it were plain, answers a body that is
not what its Content-Encoding says with a 500, and takes a gzip stream cut short for
a complete one, so a truncated upload that ends on a line boundary would be stored
as if whole. The server therefore runs with `auto_decompress=False`
(`server.RUNNER_OPTIONS`) and every body goes through `decode`:

- encodings: none/identity, gzip (x-gzip; several members allowed, as RFC 1952
  says), deflate (the zlib format of RFC 9110; raw deflate is accepted too, since
  some clients send it); anything else, or a list of encodings, is 415;
- the decoded size is bounded like the raw one (`limit`): a gzip bomb is refused
  with 413 after at most `limit` + 1 bytes of output, never inflated whole;
- a stream that is corrupt, truncated or followed by junk is 400.
"""

from __future__ import annotations

import zlib

SUPPORTED = ("identity", "gzip", "deflate")
_GZIP = zlib.MAX_WBITS | 16
_ZLIB = zlib.MAX_WBITS
_RAW_DEFLATE = -zlib.MAX_WBITS


class BodyError(Exception):
    """The body cannot be taken: `status` (400, 413, 415), `code` and a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def encoding_of(header: str | None) -> str:
    """The one encoding a Content-Encoding header names (normalised), or 415."""
    value = (header or "").strip().lower()
    if value in ("", "identity"):
        return "identity"
    if value in ("gzip", "x-gzip"):
        return "gzip"
    if value == "deflate":
        return "deflate"
    raise BodyError(
        415,
        "unsupported_encoding",
        f"Content-Encoding {value[:40]!r} is not supported; send one of "
        + ", ".join(SUPPORTED)
        + " (a single encoding)",
    )


def _too_large(limit: int) -> BodyError:
    return BodyError(413, "too_large", f"the decoded body exceeds {limit} bytes")


def _inflate(data: bytes, wbits: int, *, limit: int) -> tuple[bytes, bytes]:
    """One compressed stream of `data`: (its output, the bytes after it). Raises
    zlib.error when corrupt, EOFError when cut short, BodyError(413) over `limit`."""
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(data, limit + 1)
    if len(out) > limit or inflater.unconsumed_tail:
        raise _too_large(limit)
    out += inflater.flush()
    if len(out) > limit:
        raise _too_large(limit)
    if not inflater.eof:
        raise EOFError
    return out, inflater.unused_data


def decode(data: bytes, encoding: str, *, limit: int) -> bytes:
    """The body as sent before `encoding` (from `encoding_of`), at most `limit` bytes."""
    if encoding == "identity":
        return data
    name = encoding
    try:
        if encoding == "gzip":
            if not data:
                raise EOFError
            out = bytearray()
            rest = data
            while rest:  # concatenated gzip members are one gzip stream
                member, rest = _inflate(rest, _GZIP, limit=limit - len(out))
                out += member
            return bytes(out)
        try:
            out_bytes, rest = _inflate(data, _ZLIB, limit=limit)
        except zlib.error:
            name = "deflate (raw)"
            out_bytes, rest = _inflate(data, _RAW_DEFLATE, limit=limit)
        if rest:
            raise BodyError(400, "undecodable_body", f"bytes follow the end of the {name} data")
        return out_bytes
    except EOFError:
        message = f"the {name} data is cut short (the body ends inside the stream)"
        raise BodyError(400, "undecodable_body", message) from None
    except zlib.error as exc:
        message = f"the body is not valid {name} data ({exc})"
        raise BodyError(400, "undecodable_body", message) from None
