"""HTTP payload decoding: encodings that lie, caps that hold, charsets that browsers would pick."""

import gzip
import io
import struct
import zlib
from pathlib import Path

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from mdr.filters.extraction import ExtractionStage
from mdr.pipeline.http_payload import (PayloadTooLarge, codec_for, dechunk, decode_body, decode_text, inflate,
                                       looks_like_html)
from mdr.pipeline.reader import WarcRecordReader

# A real chunked response (www.iana.org, one chunk whose size line is `001c37`) from warcio's test files.
IANA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "warc" / "quirks" / \
    "warcio-example-iana.org-chunked.warc"
needs_iana = pytest.mark.skipif(not IANA.is_file(), reason=f"real test data not found at {IANA}")

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


def test_dechunk_size_that_overstates_the_data_is_a_short_last_chunk():
    # A size past the end of the body (a lying size line, or a record cut short) is no large payload: the bytes there
    # are the last chunk, and a `0` last-chunk it swallowed is dropped.
    assert dechunk(b"ffffffff\r\n" + HTML, 10_000) == HTML
    assert dechunk(b"ffffffff\r\n" + HTML + b"\r\n0\r\n\r\n", 10_000) == HTML
    assert dechunk(b"7fffffffffffffffffff;ext\n" + HTML + b"\n0\n\n", 10_000) == HTML
    assert dechunk(b"5\r\nhello\r\nfffffff\r\n world\r\n0\r\n\r\n", 100) == b"hello world"
    assert dechunk(b"400\r\n" + HTML[:100], 100) == HTML[:100]  # the cap holds on the bytes there
    with pytest.raises(PayloadTooLarge):
        dechunk(b"ffffffff\r\n" + HTML, len(HTML) - 1)
    body = gzip.compress(HTML)
    assert decode_body(b"ffffffff\r\n" + body + b"\r\n0\r\n\r\n", "chunked", "gzip", 10_000) == HTML


def test_gzip_bomb_behind_a_lying_chunk_size_still_stops_at_the_cap():
    bomb = gzip.compress(bytes(10**7))
    with pytest.raises(PayloadTooLarge):
        decode_body(b"ffffffff\r\n" + bomb, "chunked", "gzip", 10**6)
    with pytest.raises(PayloadTooLarge):
        decode_body(b"%x\r\n%s\r\n0\r\n\r\n" % (len(bomb), bomb), "chunked", "gzip", 10**6)


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


WIDE_PAGE = "<html><head><title>Ünïcode</title></head><body><p>Hello — 日本語, 𝄞 and plain ASCII.</p></body></html>"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
@pytest.mark.parametrize("label_endianness", ["", "le", "be"])
def test_declared_utf16_and_utf32_without_a_bom_decode(codec, label_endianness):
    # Their ASCII markup is half (or three quarters) NULs: the declared charset must come before the NUL check.
    # Labels name the width; the byte order the bytes show wins over the label's (often "utf-16", or wrong).
    label = codec[:6] + label_endianness
    assert decode(WIDE_PAGE.encode(codec), label) == (WIDE_PAGE, codec)
    # the same in <meta>, written in the page's own encoding, with no HTTP charset or a lying one
    meta = f'<meta http-equiv="Content-Type" content="text/html; charset={label}">'
    meta_page = WIDE_PAGE.replace("<head>", "<head>" + meta)
    assert decode(meta_page.encode(codec)) == (meta_page, codec)
    assert decode(meta_page.encode(codec), "iso-8859-1") == (meta_page, codec)


def test_whatwg_utf16_labels():
    assert codec_for("unicode") == codec_for("UCS-2") == codec_for("csUnicode") == "utf-16-le"
    assert codec_for("unicodeFFFE") == "utf-16-be"
    page = WIDE_PAGE.encode("utf-16-le")
    assert decode(page, "unicode") == decode(page, "unicodefffe") == (WIDE_PAGE, "utf-16-le")


def test_wide_charset_declared_on_bytes_without_nuls_is_a_lie():
    # ASCII-compatible bytes are no UTF-16/32 (WHATWG's prescan reads <meta charset=utf-16> as utf-8): decoding them as
    # UTF-16 turned every two ASCII letters into one CJK character.
    for label in ("utf-16le", "utf-16", "utf-32"):
        assert decode(HTML, label) == (HTML.decode(), "utf-8")
        meta = b'<html><head><meta charset="%s"></head>' % label.encode() + HTML
        assert decode(meta) == (meta.decode(), "utf-8")


def test_undecodable_binary_declared_wide():
    import random

    noise = random.Random(0).randbytes(4000)
    for label in ("utf-16le", "utf-16be", "utf-32"):
        assert decode(noise, label) is None
        assert decode(bytes(4000), label) is None  # decodes, but to NULs
        assert decode(struct.pack("<1000I", *range(1000)), label) is None  # a table of small integers


def test_undecodable_binary():
    import random

    assert decode(random.Random(0).randbytes(4000)) is None
    assert decode(bytes(4000), "utf-8") is None  # NULs are not text


# ---------------------------------------------------------------- end to end: read, then extract


def read_then_extract(path):
    """(drop reasons of both stages, extracted texts) for one WARC file."""
    reader, extract = WarcRecordReader([str(path)]), ExtractionStage()
    kept = list(extract.run(reader.run()))
    drops = {name: int(stat.total) for stage in (reader, extract) for name, stat in stage.stats.stats.items()
             if name.startswith("dropped_")}
    return drops, [doc.text for doc in kept]


@needs_iana
def test_real_chunked_page_with_a_lying_chunk_size_is_kept(tmp_path):
    data = IANA.read_bytes()
    assert data.count(b"\r\n\r\n001c37\r\n") == 1
    lying = tmp_path / "lying-chunk-size.warc"
    lying.write_bytes(data.replace(b"\r\n\r\n001c37\r\n", b"\r\n\r\nffffff\r\n"))  # 16 MiB > max_payload_bytes
    drops, texts = read_then_extract(IANA)
    assert drops == {"dropped_not_response": 2} and len(texts) == 1 and "Domain Names" in texts[0]
    assert read_then_extract(lying) == (drops, texts)


def http_response(writer, url, body, content_type):
    http = StatusAndHeaders("200 OK", [("Content-Type", content_type)], protocol="HTTP/1.1")
    return writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http)


@needs_iana
def test_real_page_in_utf16_utf32_or_with_control_references_is_kept(tmp_path):
    _, [expected] = read_then_extract(IANA)
    reader = WarcRecordReader([str(IANA)])
    (html,) = [doc.text for doc in reader.run()]
    assert html.count('<meta charset="utf-8" />') == 1 and html.count("Management of the DNS") == 1
    variants = [
        # the server declares UTF-16LE, the page's <meta> still says utf-8
        (html.encode("utf-16-le"), "text/html; charset=UTF-16LE"),
        # only <meta> declares it, as "utf-32" without a byte order, in a big-endian page
        (html.replace('<meta charset="utf-8" />', '<meta charset="utf-32" />').encode("utf-32-be"), "text/html"),
        # character references to C0 controls and U+FFFF in the body text
        (html.replace("Management of the DNS", "Management&#27; of&#x1b the&#12; DNS&#65535;").encode(),
         "text/html; charset=utf-8"),
    ]
    path = tmp_path / "variants.warc.gz"
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for i, (body, content_type) in enumerate(variants):
            writer.write_record(http_response(writer, f"http://www.iana.org/{i}", body, content_type))
    assert read_then_extract(path) == ({}, [expected] * 3)
