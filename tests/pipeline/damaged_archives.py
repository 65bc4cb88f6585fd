"""Generated WARC and ARC files with planted damage, and the ground truth of what the reader must count.

Every byte is written here (no warcio), so the generator knows what it planted. `Archive.expected` is the
independent count that the reader's `total` (kept + every drop reason) must equal:

- each planted record still in the file counts once, kept or under any reason, whatever damage it carries: a lying
  length, corrupt gzip data in its member, the end of the file inside it (a record counts as soon as one byte of
  it, or of its gzip member, is in the file);
- each run of garbage between two records (or before the first, or after the last) counts once, as corrupt (runs
  are longer than the reader's slack: a few stray bytes after a record are forgiven as a miscounted length);
- nothing else counts.

Damaged places are kept apart by at least one sound record, since two damages that touch are one to a reader
(garbage right after a record whose length lies is part of what that length claims). Lies are planted where a reader
can tell them from the truth: never ending on a record boundary or within the reader's slack of one
(`LENGTH_SLACK_BYTES`: a writer that miscounts by a few bytes is forgiven), a length in WARC never ends just before a
CRLF CRLF (a sound record followed by garbage), and one running past the end of a plain or one-member file has a
record after it that ends on a record boundary (else it is a record cut by the end of the file). In a plain or
one-member ARC file, garbage after a record is one item with that record (ARC ends a record with a newline, as most
lines of a page end, so it is no different from a short length).
With one gzip member per record a length ending exactly on a later record is a lie too (it runs past its member),
and is planted. Garbage in an ARC file ends with a newline: an ARC header line glued to the bytes before it cannot
be told from a URL that starts earlier (a WARC header glued to garbage is found by its `WARC/x.y` line and the field
after it).
"""

from __future__ import annotations

import gzip
import random
import zlib
from dataclasses import dataclass, field

from mdr.pipeline.warc_records.headers import LENGTH_SLACK_BYTES as SLACK

FORMATS = ("warc", "arc")
LAYOUTS = ("plain", "per_record", "single")  # plain; gzip, one member per record; gzip, one member for the file
TERMINATOR = {"warc": b"\r\n\r\n", "arc": b"\n"}  # WARC 1.1 §4: block, CRLF CRLF; ARC v1: block, newline
TEXTS = {  # text: codecs that can write it (odd encodings the reader must decode, or give a reason for)
    "Grüße aus Köln: café, déjà vu, naïve façade.": ("utf-8", "cp1252", "latin-1", "utf-16", "utf-16-le"),
    "Съешь же ещё этих мягких французских булок, да выпей чаю.": ("utf-8", "koi8-r", "cp1251", "utf-16"),
    "日本語のテキストです。文字化けしないように読みます。": ("utf-8", "shift_jis", "euc-jp", "iso2022_jp"),
    "中文网页内容测试，简体字与标点符号。": ("utf-8", "gb18030", "gbk", "utf-16-le"),
    "Ελληνικά κείμενα για δοκιμή κωδικοποίησης.": ("utf-8", "iso-8859-7", "cp1253"),
}


@dataclass(frozen=True)
class Body:
    """One record after the first (warcinfo / filedesc): an HTTP response, or (WARC) a record of another type."""

    rec_type: str = "response"  # response, request, metadata, resource (ARC: response only)
    status: bytes = b"200 OK"
    content_type: bytes | None = b"text/html; charset=utf-8"
    payload: bytes = b"<html><body><p>page</p></body></html>"
    headers: tuple[bytes, ...] = ()  # extra HTTP header lines
    url_suffix: bytes = b""  # raw bytes appended to the URL (UTF-8 or latin-1: odd encodings in headers)


@dataclass(frozen=True)
class Lie:
    """A record's declared length replaced by one that lies.

    past_end: runs `extra` bytes past the end of the data; into: ends inside the record `target` records on (or the
    first after it with room), at `where` (0..1) of the room there; short: ends at `where` of its own block;
    boundary (one member per record only): ends exactly where the record `target` (>= 2) records on starts, or at
    the end of the data; partial: the length is true but the record is cut at `where` and the next one written
    right after it (a writer killed mid-record, then appending): plain or one-member gzip, its block is cut and the
    next header glued to it (WARC only: a glued ARC header line cannot be told from the URL before it); one member
    per record, its gzip member is cut."""

    kind: str
    target: int = 1
    where: float = 0.5
    extra: int = 1


@dataclass(frozen=True)
class Junk:
    data: bytes  # ends with a newline, holds no whitespace-only or header-like line start
    raw: bool = False  # per_record layout: raw bytes between gzip members (else a gzip member of its own)


@dataclass
class Plan:
    fmt: str
    layout: str
    bodies: list[Body]
    junk: dict[int, Junk] = field(default_factory=dict)  # i: before record i (len(records): after the last)
    lies: dict[int, Lie] = field(default_factory=dict)  # record index (0: warcinfo / filedesc)
    corrupt: dict[int, tuple[float, int]] = field(default_factory=dict)  # per_record: (where in member, xor byte)
    cut: tuple[int, float] | None = None  # the file ends inside this record, at `where` of it


@dataclass
class Archive:
    data: bytes
    name: str  # a file name with the right extension
    records: int  # planted records in the file
    garbage: int  # runs of garbage in the file
    damaged: set[int]  # records with a lie, corrupt gzip data, or the end of the file in them
    urls: list[str]  # URL of each record present, as the reader decodes it (index = record index)

    @property
    def expected(self) -> int:
        return self.records + self.garbage


def _url(index: int, suffix: bytes) -> bytes:
    return b"http://site%d.example/page/%d" % (index % 3, index) + suffix


def _record(plan: Plan, index: int) -> tuple[callable, bytes, bytes]:
    """(header for a declared length, block, terminator) of record `index`."""
    fmt = plan.fmt
    if index == 0:
        if fmt == "warc":
            block = b"software: mdr-tests\r\nformat: WARC File Format 1.0\r\n"
            return (lambda n: _warc_header(b"warcinfo", None, 0, b"application/warc-fields", n)), block, TERMINATOR[fmt]
        block = b"1 0 mdr-tests\nURL IP-address Archive-date Content-type Archive-length\n"
        return (lambda n: b"filedesc://gen.arc 0.0.0.0 20080101000000 text/plain %d\n" % n), block, TERMINATOR[fmt]
    body = plan.bodies[index - 1]
    url = _url(index, body.url_suffix)
    if body.rec_type == "response":
        lines = [b"HTTP/1.1 " + body.status]
        if body.content_type is not None:
            lines.append(b"Content-Type: " + body.content_type)
        lines += list(body.headers)
        block = b"\r\n".join(lines) + b"\r\n\r\n" + body.payload
        content_type = b"application/http; msgtype=response"
    elif body.rec_type == "request":
        block = b"GET /page/%d HTTP/1.1\r\nHost: example\r\nUser-Agent: mdr-tests\r\n\r\n" % index
        content_type = b"application/http; msgtype=request"
    else:  # metadata, resource
        block = body.payload or b"fetchTimeMs: 12\r\n"
        content_type = b"application/warc-fields" if body.rec_type == "metadata" else b"text/html"
    if fmt == "warc":
        return (lambda n: _warc_header(body.rec_type.encode(), url, index, content_type, n)), block, TERMINATOR[fmt]
    return (lambda n: b"%s 10.0.0.%d 20080102030405 text/html %d\n" % (url, index % 250, n)), block, TERMINATOR[fmt]


def _warc_header(rec_type: bytes, url: bytes | None, index: int, content_type: bytes, length: int) -> bytes:
    lines = [b"WARC/1.0", b"WARC-Type: " + rec_type, b"WARC-Date: 2024-05-01T12:00:%02dZ" % (index % 60),
             b"WARC-Record-ID: <urn:uuid:00000000-0000-4000-8000-%012d>" % index]
    if url is not None:
        lines.append(b"WARC-Target-URI: " + url)
    lines += [b"Content-Type: " + content_type, b"Content-Length: %d" % length]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _junk_in_stream(plan: Plan, junk: Junk) -> bytes:
    """The bytes a junk run adds to the decompressed stream (raw bytes between gzip members add none)."""
    return b"" if plan.layout == "per_record" and junk.raw else junk.data


def _written(plan: Plan, parts, index: int) -> tuple[bytes, bytes]:
    """(block, terminator) of record `index` as written: cut, without its terminator, under a partial lie."""
    block, terminator = parts[index][1], parts[index][2]
    lie = plan.lies.get(index)
    if lie is not None and lie.kind == "partial" and plan.layout != "per_record":
        return block[:int(lie.where * (len(block) - SLACK - 1))], b""
    return block, terminator


def _layout(plan: Plan, parts, lengths) -> tuple[list[tuple[int, int, int]], int]:
    """Stream offsets (header start, block start, record end after its terminator) of every record, stream size."""
    position, spans = 0, []
    for index, (header, _, _) in enumerate(parts):
        if index in plan.junk:
            position += len(_junk_in_stream(plan, plan.junk[index]))
        head = header(lengths[index])
        block, terminator = _written(plan, parts, index)
        spans.append((position, position + len(head), position + len(head) + len(block) + len(terminator)))
        position = spans[-1][2]
    if len(parts) in plan.junk:
        position += len(_junk_in_stream(plan, plan.junk[len(parts)]))
    return spans, position


def _visible(block: bytes, offset: int) -> bool:
    """Whether non-whitespace follows `offset` inside the block (else a length ending there ends on a boundary)."""
    return bool(block[offset:].strip())


def _stream(plan: Plan, parts, lengths) -> bytes:
    """The file's bytes as a reader inflates them (raw junk between gzip members left out)."""
    out = []
    for index, (header, _, _) in enumerate(parts):
        if index in plan.junk:
            out.append(_junk_in_stream(plan, plan.junk[index]))
        block, terminator = _written(plan, parts, index)
        out.append(header(lengths[index]) + block + terminator)
    if len(parts) in plan.junk:
        out.append(_junk_in_stream(plan, plan.junk[len(parts)]))
    return b"".join(out)


def _lie_length(plan: Plan, index: int, lie: Lie, parts, spans, size, lengths) -> int | None:
    """The declared length that plants `lie` on record `index`, or None where it cannot be planted unambiguously."""
    header_start, block_start, _ = spans[index]
    block, terminator = parts[index][1], parts[index][2]
    if lie.kind in ("past_end", "partial") and not _backed_after(plan, index, len(spans)):
        return None
    if lie.kind == "past_end":
        return size - block_start + lie.extra
    if lie.kind == "short":
        room = len(block) - SLACK - 1
        if room < 0:
            return None
        first = int(lie.where * room)
        for length in [*range(first, -1, -1), *range(first + 1, room + 1)]:
            # (WARC) not just before CRLF CRLF, which ends a record as WARC does; an ARC record's newline proves
            # nothing (most lines of a page end with one), so there a short length may end anywhere
            if (plan.fmt == "arc" or block[length:length + len(terminator)] != terminator) and _visible(block, length):
                return length
        return None
    if lie.kind == "partial":
        if plan.layout == "per_record":
            return len(block)
        if plan.fmt == "arc" or len(block) < SLACK + 1:
            return None
        end = block_start + len(block)  # where the true length now ends: past the data, or off a later record
        if end > size:
            return len(block)
        stream = _stream(plan, parts, lengths)
        if any(abs(end - spans[later][0]) <= SLACK + 4 for later in range(index + 1, len(spans))) or end == size:
            return None
        return None if stream[end:].lstrip().startswith(b"WARC/") else len(block)
    target = index + lie.target
    if lie.kind == "boundary":  # swallowing one whole record at least (the end of the data counts as a record start)
        target = min(target, len(spans))
        if plan.layout != "per_record" or target < index + 2:
            return None
        return (spans[target][0] if target < len(spans) else size) - block_start
    if lie.kind == "into":
        for target in range(target, len(spans)):  # the first record on with room for it
            target_block = parts[target][1]
            low, high = SLACK + 1, len(target_block) - SLACK - 1
            first = low + int(lie.where * (high - low))
            for offset in [*range(first, low - 1, -1), *range(first + 1, high + 1)]:
                # (WARC) not just before CRLF CRLF: that ends a record as WARC does, garbage after it is counted apart
                if _visible(target_block, offset) and not (
                        plan.fmt == "warc" and target_block[offset:offset + 4] == TERMINATOR["warc"]):
                    return spans[target][1] + offset - block_start
        return None
    raise ValueError(lie.kind)


def _backed_after(plan: Plan, index: int, count: int) -> bool:
    """Whether a length running past the end of the data from record `index` can be told from a record cut by the end
    of the file: a record after it (plain, or one gzip member for the file) ends on a record boundary (the next
    record, or the end of the file; not garbage, a lie or the cut), else a reader keeps to the record's span."""
    if plan.layout == "per_record" or index + 1 >= count:
        return True  # its gzip member ends; or nothing follows it to lose
    cut = plan.cut[0] if plan.cut is not None else count
    return any(later not in plan.lies and later < cut and later + 1 not in plan.junk for later in range(index + 1, count))


def _merged_junk(plan: Plan, index: int) -> bool:
    """Whether junk before record `index` is one item with the record before it: in a plain or one-member ARC file a
    record ends with a newline, as almost every line of a page does, so a record followed by garbage cannot be told
    from one whose length is short; the reader counts the record, garbage included, once as corrupt."""
    return plan.fmt == "arc" and plan.layout != "per_record" and index >= 1


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def build(plan: Plan) -> Archive:
    """The file of `plan`, and what a reader must count in it. Lies that cannot be planted are dropped from it."""
    count = len(plan.bodies) + 1
    parts = [_record(plan, index) for index in range(count)]
    true_lengths = [len(block) for _, block, _ in parts]
    lengths = list(true_lengths)
    for _ in range(20):  # a lie's length changes its header's size, which moves what follows: iterate to a fixed point
        spans, size = _layout(plan, parts, lengths)
        wanted = list(true_lengths)
        for index, lie in list(plan.lies.items()):
            length = _lie_length(plan, index, lie, parts, spans, size, lengths)
            if length is None:
                del plan.lies[index]
                break
            wanted[index] = length
        else:
            if wanted == lengths:
                break
            lengths = wanted
            continue
        lengths = list(true_lengths)  # a lie was dropped: start over
    else:
        raise AssertionError("declared lengths did not settle")
    spans, size = _layout(plan, parts, lengths)

    pieces: list[tuple[str, int, bytes]] = []  # (kind, index, bytes in the file's layout)
    for index, (header, _, _) in enumerate(parts):
        if index in plan.junk:
            pieces.append(("junk", index, plan.junk[index].data))
        block, terminator = _written(plan, parts, index)
        pieces.append(("record", index, header(lengths[index]) + block + terminator))
    if count in plan.junk:
        pieces.append(("junk", count, plan.junk[count].data))

    cut_index = plan.cut[0] if plan.cut is not None and plan.cut[0] < count else None
    name = f"gen.{plan.fmt}" + ("" if plan.layout == "plain" else ".gz")
    if plan.layout == "single":
        stream = b"".join(data for _, _, data in pieces)
        data = _gzip(stream)
        present = count
        if cut_index is not None:
            start, _, end = spans[cut_index]
            data, produced = _cut_single(data, start + 1 + int(plan.cut[1] * (end - start - 2)), end - 1)
            if produced is None:
                cut_index = None
            else:
                present = sum(1 for header_start, _, _ in spans if header_start < produced)
    else:
        chunks, where_is = [], {}  # record index: (file offset, size) of its bytes or gzip member
        for kind, index, piece in pieces:
            if plan.layout != "plain" and not (kind == "junk" and plan.junk[index].raw):
                piece = bytearray(_gzip(piece))
                if kind == "record" and index in plan.corrupt:
                    where, xor = plan.corrupt[index]
                    piece[10 + int(where * (len(piece) - 19))] ^= xor  # inside the deflate data, before the trailer
                if kind == "record" and index in plan.lies and plan.lies[index].kind == "partial":
                    piece = piece[:11 + int(plan.lies[index].where * (len(piece) - 12))]  # a gzip member cut short
            if kind == "record":
                where_is[index] = (sum(map(len, chunks)), len(piece))
            chunks.append(bytes(piece))
        data = b"".join(chunks)
        present = count
        if cut_index is not None:
            start, length = where_is[cut_index]
            data = data[:start + 1 + int(plan.cut[1] * (length - 2))]
            present = cut_index + 1
    garbage = sum(1 for index in plan.junk if (cut_index is None or index < cut_index) and not _merged_junk(plan, index))
    damaged = set(plan.lies) | (set(plan.corrupt) if plan.layout == "per_record" else set())
    damaged |= {index - 1 for index in plan.junk if _merged_junk(plan, index)}
    if cut_index is not None:
        damaged.add(min(cut_index, present - 1))
    damaged = {index for index in damaged if index < present}
    urls = [_url(index, plan.bodies[index - 1].url_suffix).decode("utf-8", "replace") if index else ""
            for index in range(present)]
    return Archive(data, name, present, garbage, damaged, urls)


def _cut_single(data: bytes, low: int, high: int) -> tuple[bytes, int | None]:
    """The shortest prefix of a one-member gzip file that inflates to at least `low` bytes, and how many it inflates
    to; None if that is more than `high` (the cut would not fall inside the wanted record)."""
    def produced(size: int) -> int:
        return len(zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[:size]))

    lo, hi = 0, len(data)
    while lo < hi:
        mid = (lo + hi) // 2
        if produced(mid) >= low:
            hi = mid
        else:
            lo = mid + 1
    out = produced(lo)
    return (data[:lo], out) if out <= high and lo < len(data) else (data, None)


# ---------------------------------------------------------------- random plans (hypothesis draws the seed and sizes)


def junk_bytes(rng: random.Random, glued: bool = False) -> bytes:
    """Garbage: text or binary, never a header-like or blank line start, ending with a newline unless `glued` to the
    WARC header after it; it holds no byte of the gzip magic and no NUL (as raw bytes between gzip members: zero
    padding after the last member is no damage)."""
    alphabet = bytes(b for b in range(256) if b not in b"W0123456789\x1f\x00\r\n \t")
    if rng.random() < 0.5:
        body = bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 300)))
    else:
        words = [b"lorem", b"ipsum", b"<div>", b"}{", b"%PDF", b"garbage", b"\xff\xfe", b"HTTP/1.1"]
        body = b" ".join(rng.choice(words) for _ in range(rng.randint(1, 40)))
    body = b"junk" + body
    return body + b"." * (SLACK + 8 - len(body)) + (b"" if glued else b"\n")  # past the slack (forgives stray bytes)


def random_body(rng: random.Random, fmt: str) -> Body:
    text = rng.choice(list(TEXTS))
    codec = rng.choice(TEXTS[text])
    html = f"<!DOCTYPE html><html><head><title>t</title></head><body><p>{text}</p><p>{text}</p></body></html>"
    payload = html.encode(codec)
    declared = rng.choice([codec, "utf-8", None, "x-unknown-charset"])  # true, lying, absent, unknown
    content_type = b"text/html" + (b"; charset=" + declared.encode() if declared else b"")
    headers: tuple[bytes, ...] = ()
    shape = rng.random()
    if shape < 0.1:
        payload = b""
    elif shape < 0.2:
        payload = gzip.compress(payload, mtime=0)
        headers = (b"Content-Encoding: gzip",)
    elif shape < 0.3:
        payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)
        headers = (b"Transfer-Encoding: chunked",)
    elif shape < 0.35:
        payload = bytes(rng.choice(bytes(range(32, 256))) for _ in range(rng.randint(10, 400)))
        content_type = rng.choice([b"application/octet-stream", b"text/html", None])
    status = rng.choice([b"200 OK"] * 6 + [b"404 Not Found", b"301 Moved Permanently"])
    rec_type = "response" if fmt == "arc" else rng.choice(["response"] * 5 + ["request", "metadata", "resource"])
    suffix = rng.choice([b"", b"", "/é-ü".encode(), "/caf\xe9".encode("latin-1"), b"?q=a%20b"])
    return Body(rec_type, status, content_type, payload, headers, suffix)


def random_plan(seed: int, fmt: str, layout: str, records: int, damage_rate: float) -> Plan:
    """Bodies, and damage at random places kept apart by at least one sound record (see the module docstring)."""
    rng = random.Random(seed)
    plan = Plan(fmt, layout, [random_body(rng, fmt) for _ in range(records)])
    count = records + 1
    # sites in file order: junk before record 0, record 0, junk before record 1, ..., junk after the last record
    sites = [("junk", i // 2) if i % 2 == 0 else ("record", i // 2) for i in range(2 * count + 1)]
    blocked = False  # the last damaged site has no sound record after it yet
    for kind, index in sites:
        damage = not blocked and rng.random() < damage_rate
        if kind == "record" and not damage:
            blocked = False
            continue
        if not damage:
            continue
        blocked = True
        if kind == "junk":
            # raw bytes before the first member would make the file look like no gzip at all
            raw = layout == "per_record" and 0 < index and rng.random() < 0.5
            plan.junk[index] = Junk(junk_bytes(rng, glued=fmt == "warc" and rng.random() < 0.5), raw)
            continue
        choices = ["past_end", "into", "short", "partial", "cut"] + (["boundary", "corrupt", "corrupt"]
                                                                      if layout == "per_record" else [])
        what = rng.choice(choices)
        if what == "cut":
            plan.cut = (index, rng.random())
            break
        if what == "corrupt":
            plan.corrupt[index] = (rng.random(), rng.randint(1, 255))
        else:
            plan.lies[index] = Lie(what, rng.randint(1, 3) + (what == "boundary"), rng.random(),
                                   rng.choice([1, 7, 10**3, 10**8]))
    return plan
