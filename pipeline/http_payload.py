"""HTTP payloads of archived responses: undo transfer/content encodings under a size cap, sniff HTML, decode text.

Archived headers often lie (2008 Common Crawl ARCs and ClueWeb09 say `gzip`/`chunked` for bodies stored decoded),
so every decoding step falls back to the bytes as stored when they do not parse as the header claims.
"""

from __future__ import annotations

import codecs
import re
import zlib
from functools import lru_cache

# zlib window bits: 32 + 15 accepts a gzip or a zlib header; -15 is a bare deflate stream (some servers send it).
GZIP_OR_ZLIB_WBITS = 32 + zlib.MAX_WBITS
RAW_DEFLATE_WBITS = -zlib.MAX_WBITS
GZIP_MAGIC = b"\x1f\x8b"
CONTENT_DECODERS = {"gzip": (GZIP_OR_ZLIB_WBITS,), "x-gzip": (GZIP_OR_ZLIB_WBITS,),
                    "deflate": (GZIP_OR_ZLIB_WBITS, RAW_DEFLATE_WBITS)}

_CHUNK_SIZE_LINE = re.compile(rb"[ \t]*([0-9a-fA-F]+)[ \t]*(?:;[^\n]*)?\r?\n")
_CHARSET_IN_CONTENT_TYPE = re.compile(r"""charset\s*=\s*["']?\s*([^"';,\s]+)""", re.IGNORECASE)
# `<meta charset=x>` and `<meta http-equiv="Content-Type" content="text/html; charset=x">` alike.
_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([a-zA-Z0-9_.:+-]+)""", re.IGNORECASE)
# WHATWG MIME sniffing, "identifying a resource with an unknown MIME type": the HTML patterns, each followed by a
# tag-terminating byte (space or `>`), checked after leading whitespace.
_HTML_START = re.compile(
    rb"<(?:!doctype html|html|head|script|iframe|h1|div|font|table|a|style|title|b|body|br|p)[ \t\n\f\r>]|<!--",
    re.IGNORECASE,
)
HTML_SNIFF_BYTES = 512
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# WHATWG Encoding Standard: browsers decode these labels with the superset on the right, and so do we, or pages
# that use the superset's extra characters (curly quotes in "iso-8859-1", NEC kanji in "shift_jis") fail to decode.
_SUPERSETS = {"iso8859-1": "cp1252", "ascii": "cp1252", "iso8859-9": "cp1254", "iso8859-11": "cp874",
              "tis-620": "cp874", "gb2312": "gb18030", "gbk": "gb18030", "shift_jis": "cp932", "euc_kr": "cp949",
              "big5": "big5hkscs"}


class PayloadTooLarge(Exception):
    """The payload, as stored or once decoded, is larger than the cap."""


def decode_body(body: bytes, transfer_encoding: str | None, content_encoding: str | None, max_bytes: int) -> bytes:
    """Undoes chunked transfer and gzip/deflate content encoding, keeping the stored bytes where a header lies.

    Raises PayloadTooLarge as soon as the decoded payload passes `max_bytes` (a gzip bomb stops there).
    """
    if transfer_encoding and "chunked" in transfer_encoding.lower():
        body = dechunk(body, max_bytes)
    if content_encoding:
        body = inflate(body, content_encoding.strip().lower(), max_bytes)
    if len(body) > max_bytes:
        raise PayloadTooLarge
    return body


def dechunk(body: bytes, max_bytes: int) -> bytes:
    """Joins HTTP/1.1 chunks; a body whose first line is no chunk size was stored de-chunked: returned as is."""
    parts, size_so_far, pos = [], 0, 0
    while True:
        match = _CHUNK_SIZE_LINE.match(body, pos)
        if match is None:
            return b"".join(parts) if parts else body  # cut short after some chunks, or not chunked at all
        size = int(match.group(1), 16)
        if size == 0:
            return b"".join(parts)
        start = match.end()
        parts.append(body[start:start + size])
        size_so_far += size
        if size_so_far > max_bytes:
            raise PayloadTooLarge
        pos = start + size
        if body.startswith(b"\r\n", pos):
            pos += 2
        elif body.startswith(b"\n", pos):
            pos += 1


def inflate(body: bytes, encoding: str, max_bytes: int) -> bytes:
    """Decompresses a gzip/deflate body to at most max_bytes + 1 bytes; returns it unchanged if it does not inflate."""
    for wbits in CONTENT_DECODERS.get(encoding, ()):
        parts, size_so_far, data = [], 0, body
        try:
            while data:
                decompressor = zlib.decompressobj(wbits)
                part = decompressor.decompress(data, max_bytes + 1 - size_so_far)
                parts.append(part)
                size_so_far += len(part)
                if size_so_far > max_bytes:
                    raise PayloadTooLarge
                # gzip allows several members back to back; anything else after the stream is ignored
                data = decompressor.unused_data if decompressor.unused_data.startswith(GZIP_MAGIC) else b""
        except zlib.error:
            if parts:  # inflated a member, then hit junk: keep what inflated
                return b"".join(parts)
            continue
        return b"".join(parts)
    return body  # unknown encoding (br, identity, garbage) or a header that lies


def looks_like_html(payload: bytes) -> bool:
    """WHATWG-style sniff of the first bytes, after a BOM and whitespace."""
    head = payload[:HTML_SNIFF_BYTES]
    for bom, _ in _BOMS:
        if head.startswith(bom):
            head = head[len(bom):]
            break
    return _HTML_START.match(head.lstrip()) is not None


def charset_from_content_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    match = _CHARSET_IN_CONTENT_TYPE.search(content_type)
    return match.group(1) if match else None


@lru_cache(maxsize=512)
def codec_for(label: str | None) -> str | None:
    """Python codec for a charset label (with WHATWG supersets), or None when unknown or not a text encoding."""
    if not label:
        return None
    try:
        info = codecs.lookup(label.strip().strip("\"'").lower())
    except LookupError:
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None  # rot13, base64, hex...: codecs, not charsets
    return _SUPERSETS.get(info.name, info.name)


def _clean_enough(text: str, max_bad_fraction: float) -> bool:
    return text.count("\ufffd") + text.count("\x00") <= max_bad_fraction * max(len(text), 1)


def decode_text(payload: bytes, declared: str | None, meta_bytes: int, detect_bytes: int,
                max_bad_fraction: float) -> tuple[str, str] | None:
    """Decodes an HTML/text payload; returns (text, codec) or None when it does not decode to reasonable text.

    Order: a BOM; the HTTP charset, then `<meta charset>` in the first `meta_bytes`, then UTF-8, each strictly (valid
    UTF-8 is almost never an accident, and detection is slow); the declared charsets again with a few bytes replaced
    (a right declaration on a page with some broken bytes); charset-normalizer on the first `detect_bytes`; last,
    UTF-8 with replacement. Lenient results must keep U+FFFD and NUL under `max_bad_fraction` of the text.
    """
    for bom, codec in _BOMS:
        if payload.startswith(bom):
            try:
                return payload.decode(codec), codec.removesuffix("-sig")  # the BOM goes, the charset is utf-8
            except UnicodeDecodeError:
                break
    if b"\x00" in payload and payload.count(b"\x00") > max_bad_fraction * len(payload):
        return None  # binary, or UTF-16 without a BOM: no 8-bit charset makes text of it
    declared_codecs = []
    for source in ("http", "meta"):
        label = declared if source == "http" else _meta_charset(payload, meta_bytes)  # <meta> only when needed
        codec = codec_for(label)
        if codec and codec not in declared_codecs:
            declared_codecs.append(codec)
            if (text := _strict(payload, codec)) is not None:
                return text, codec
    if "utf-8" not in declared_codecs and (text := _strict(payload, "utf-8")) is not None:
        return text, "utf-8"
    for codec in declared_codecs:
        text = payload.decode(codec, errors="replace")
        if _clean_enough(text, max_bad_fraction):
            return text, codec
    detected = _detect(payload, detect_bytes)
    if detected and detected not in declared_codecs:
        text = _strict(payload, detected)
        if text is not None and _clean_enough(text, max_bad_fraction):
            return text, detected
    text = payload.decode("utf-8", errors="replace")
    if _clean_enough(text, max_bad_fraction):
        return text, "utf-8"
    return None


def _strict(payload: bytes, codec: str) -> str | None:
    try:
        return payload.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _meta_charset(payload: bytes, meta_bytes: int) -> str | None:
    match = _META_CHARSET.search(payload, 0, meta_bytes)
    return match.group(1).decode("ascii") if match else None


def _detect(payload: bytes, detect_bytes: int) -> str | None:
    from charset_normalizer import from_bytes  # imported on first use: most pages never need it

    best = from_bytes(payload[:detect_bytes]).best()
    return codec_for(best.encoding) if best is not None else None
