"""HTTP payload decoding: encodings that lie, caps that hold, charsets that browsers would pick."""

import gzip
import zlib

import pytest

from mdr.pipeline.http_payload import (PayloadTooLarge, codec_for, dechunk, decode_body, decode_text, inflate,
                                       looks_like_html)

HTML = b"<html><body>" + b"hello world " * 100 + b"</body></html>"


def decode(payload, declared=None):
    return decode_text(payload, declared, meta_bytes=4096, detect_bytes=1 << 16, max_bad_fraction=0.01)


def test_dechunk():
    chunked = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n"
    assert dechunk(chunked, 100) == b"hello world"
    assert dechunk(b"5\nhello\n0\n\n", 100) == b"hello"  # bare newlines
    assert dechunk(b"5\r\nhello\r\n6\r\n wo", 100) == b"hello wo"  # cut short: what is there
    assert dechunk(HTML, 10_000) == HTML  # header lies: stored de-chunked
    assert dechunk(b"\n\r\n<html>", 100) == b"\n\r\n<html>"
    with pytest.raises(PayloadTooLarge):
        dechunk(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 8)


def test_inflate():
    assert inflate(gzip.compress(HTML), "gzip", 10_000) == HTML
    assert inflate(zlib.compress(HTML), "deflate", 10_000) == HTML
    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    assert inflate(raw.compress(HTML) + raw.flush(), "deflate", 10_000) == HTML  # bare deflate, as some servers
    assert inflate(gzip.compress(HTML[:100]) + gzip.compress(HTML[100:]), "x-gzip", 10_000) == HTML
    assert inflate(HTML, "gzip", 10_000) == HTML  # header lies: stored decoded
    assert inflate(HTML, "br", 10_000) == HTML  # unsupported: left as is
    with pytest.raises(PayloadTooLarge):
        inflate(gzip.compress(bytes(10**7)), "gzip", 10**6)


def test_decode_body_applies_chunked_then_gzip():
    body = gzip.compress(HTML)
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    assert decode_body(chunked, "chunked", "gzip", 10_000) == HTML
    with pytest.raises(PayloadTooLarge):
        decode_body(chunked, "chunked", "gzip", len(HTML) - 1)


@pytest.mark.parametrize("payload, expected", [
    (b"<!DOCTYPE html><html>", True), (b"\xef\xbb\xbf\r\n  <HTML lang=en>", True), (b"<head>", True),
    (b"<body>", True), (b"<!-- comment -->", True), (b"<p>text", True), (b"<br/>", False),
    (b"<?xml version='1.0'?><rss>", False), (b"%PDF-1.4", False), (b"hello <html>", False), (b"", False),
])
def test_looks_like_html(payload, expected):
    assert looks_like_html(payload) is expected


def test_codec_for_uses_whatwg_supersets():
    assert codec_for("ISO-8859-1") == "cp1252" and codec_for("latin1") == "cp1252"
    assert codec_for("GB2312") == "gb18030" and codec_for("Shift_JIS") == "cp932"
    assert codec_for('"UTF-8"') == "utf-8" and codec_for("EUC-JP") == "euc_jp"
    assert codec_for("no-such-charset") is None and codec_for("rot13") is None and codec_for(None) is None


def test_decode_text_order():
    assert decode(HTML) == (HTML.decode(), "utf-8")
    assert decode(b"\xef\xbb\xbf" + HTML) == (HTML.decode(), "utf-8")
    cyrillic = "<html><body>Привет, как дела? Всё хорошо.</body></html>".encode("cp1251")
    assert decode(cyrillic, "windows-1251") == (cyrillic.decode("cp1251"), "cp1251")
    meta = b'<html><head><meta http-equiv="Content-Type" content="text/html; charset=euc-jp"></head>'
    japanese = meta + "<body>日本語のページです。</body></html>".encode("euc_jp")
    assert decode(japanese)[1] == "euc_jp" and "日本語" in decode(japanese)[0]
    # a declared charset that is wrong for valid UTF-8 bytes loses to UTF-8
    utf8 = "<html><body>ā and ő</body></html>".encode()
    assert decode(utf8, "iso-8859-1") == (utf8.decode(), "utf-8")
    # one broken byte in a long UTF-8 page: replaced, the page kept
    broken = HTML[:500] + b"\xff" + HTML[500:]
    text, codec = decode(broken, "utf-8")
    assert codec == "utf-8" and text.count("\ufffd") == 1


def test_decode_text_detects_undeclared_legacy_charsets():
    page = ("<html><body>" + "Съешь же ещё этих мягких французских булок, да выпей чаю. " * 20 + "</body></html>")
    text, codec = decode(page.encode("cp1251"))
    assert text == page and codec == "cp1251"


def test_undecodable_binary():
    import random

    assert decode(random.Random(0).randbytes(4000)) is None
    assert decode(bytes(4000), "utf-8") is None  # NULs are not text
