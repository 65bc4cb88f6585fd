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
# The last-chunk line and the empty line after it (RFC 9112 §7.1), as they end a body whose last size overstated it.
_LAST_CHUNK_AT_END = re.compile(rb"\r?\n0+[ \t]*(?:;[^\n]*)?\r?\n(?:\r?\n)?\Z")
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

# UTF-16/32 codecs -> the byte orders to try, the label's first (WHATWG: "utf-16" without a BOM is little-endian).
_WIDE_CODECS = {"utf-16": ("utf-16-le", "utf-16-be"), "utf-16-le": ("utf-16-le", "utf-16-be"),
                "utf-16-be": ("utf-16-be", "utf-16-le"), "utf-32": ("utf-32-le", "utf-32-be"),
                "utf-32-le": ("utf-32-le", "utf-32-be"), "utf-32-be": ("utf-32-be", "utf-32-le")}
# WHATWG Encoding Standard labels of UTF-16LE/BE that Python's codecs do not know.
_WHATWG_UTF16_LABELS = {"unicode": "utf-16-le", "csunicode": "utf-16-le", "iso-10646-ucs-2": "utf-16-le",
                        "ucs-2": "utf-16-le", "unicodefeff": "utf-16-le", "unicodefffe": "utf-16-be"}
_C0_CONTROLS = dict.fromkeys(set(range(0x20)) - {0x9, 0xA, 0xC, 0xD})  # a str.translate table that deletes them


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
        chunk = body[start:start + size]
        size_so_far += len(chunk)  # the bytes there, not the size line: a lying size is no large payload
        if size_so_far > max_bytes:
            raise PayloadTooLarge
        if len(chunk) < size:
            # The size overstates the data: a record cut short (Common Crawl truncates payloads) or a size line
            # that lies. What is there is the last chunk; a terminating `0` chunk it swallowed is no content.
            parts.append(_LAST_CHUNK_AT_END.sub(b"", chunk))
            return b"".join(parts)
        parts.append(chunk)
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
    label = label.strip().strip("\"'").lower()
    if label in _WHATWG_UTF16_LABELS:
        return _WHATWG_UTF16_LABELS[label]
    try:
        info = codecs.lookup(label)
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
    A payload with more NULs than that is binary or UTF-16/32 without a BOM: only a UTF-16/32 charset it declares
    (HTTP, then <meta>) can decode it. Elsewhere a UTF-16/32 label is ignored (ASCII-compatible bytes are none).
    """
    for bom, codec in _BOMS:
        if payload.startswith(bom):
            try:
                return payload.decode(codec), codec.removesuffix("-sig")  # the BOM goes, the charset is utf-8
            except UnicodeDecodeError:
                break
    if b"\x00" in payload and payload.count(b"\x00") > max_bad_fraction * len(payload):
        # Binary, or UTF-16/32 without a BOM (its ASCII markup is half NULs or more): no 8-bit charset makes text of
        # it, only a UTF-16/32 charset the page declares.
        return _decode_wide(payload, declared, meta_bytes, max_bad_fraction)
    declared_codecs = []
    for source in ("http", "meta"):
        label = declared if source == "http" else _meta_charset(payload, meta_bytes)  # <meta> only when needed
        codec = codec_for(label)
        if codec in _WIDE_CODECS:
            # Bytes with (almost) no NUL are no UTF-16/32 HTML, whose ASCII has a NUL per character: the label lies.
            # WHATWG's prescan reads <meta charset=utf-16> as utf-8 for the same reason.
            continue
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
    if detected and detected not in declared_codecs and detected not in _WIDE_CODECS:
        text = _strict(payload, detected)
        if text is not None and _clean_enough(text, max_bad_fraction):
            return text, detected
    text = payload.decode("utf-8", errors="replace")
    if _clean_enough(text, max_bad_fraction):
        return text, "utf-8"
    return None


def _decode_wide(payload: bytes, declared: str | None, meta_bytes: int,
                 max_bad_fraction: float) -> tuple[str, str] | None:
    """(text, codec) of a payload with many NULs that declares a UTF-16/32 charset (HTTP, else <meta>), or None.

    Labels often say "utf-16" or the wrong byte order, so both byte orders of the declared width are tried and the
    one that gives the most ASCII wins: right, it decodes the ASCII markup; wrong, it turns it into CJK or
    out-of-range code points. It must also keep U+FFFD and C0 controls (NUL included; not TAB, LF, FF, CR) under
    `max_bad_fraction`: binary read as UTF-16/32 gives them (a table of small integers is valid UTF-32 of the code
    points 0, 1, 2...), text does not.
    """
    # The <meta> of a UTF-16/32 page is readable once the NULs of its ASCII characters are gone.
    labels = (declared, _meta_charset(payload[:4 * meta_bytes].replace(b"\x00", b""), meta_bytes))
    for codec in filter(None, map(codec_for, labels)):
        if codec not in _WIDE_CODECS:
            continue
        best, best_ascii = None, 0
        for candidate in _WIDE_CODECS[codec]:
            text = payload.decode(candidate, errors="replace")
            ascii_count = len(text.encode("ascii", errors="ignore"))
            bad = len(text) - len(text.translate(_C0_CONTROLS)) + text.count("\ufffd")
            if ascii_count > best_ascii and bad <= max_bad_fraction * max(len(text), 1):
                best, best_ascii = (text, candidate), ascii_count
        if best is not None:
            return best
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
