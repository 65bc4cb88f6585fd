"""Stage 2: main-content extraction of WARC HTML with trafilatura, then RefinedWeb's post-processing.

trafilatura has no timeout of its own and can run forever on a pathological page (spec §14), so it runs in a
child process that is killed and restarted when a document overruns its budget. Output never depends on
document order: trafilatura's cross-document dedup cache is off by default (spec §14). trafilatura's boilerplate
XPaths run as compiled Python predicates (mdr.filters.fast_xpath): the same text, in about 0.6x the time.
"""

import contextlib
import ctypes
import functools
import importlib
import multiprocessing
import pkgutil
import re
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.writers.disk_base import DiskWriter

from mdr.filters.drop import DecidingFilter, drop
from mdr.patches.trafilatura import vouch_if_xml_clean
from mdr.pipeline.recipe import OptionError, Options, option
from mdr.pipeline.terminal import SURROGATE

ExtractFn = Callable[[str], "str | None"]


@dataclass
class ExtractionConfig(Options):
    """Extraction options. RW used trafilatura on WARC HTML (RW §3.1); its trafilatura options are unpublished."""

    # Per-document budget for the child process. DT-main's sandbox uses 1 s; the slowest of the 531 real benchmark
    # pages (shared/data/extraction) takes 0.6 s on an idle core, so 1 s drops real pages on a loaded machine.
    # At most a day: no page is worth more, and Connection.poll raises OverflowError from about 1e7 s.
    timeout_s: float = option(5.0, range="(0, 86400]")
    # Dropped as too_large before extraction. Common Crawl truncates payloads at 1 MiB; decompression and
    # decoding can grow them, and the largest benchmark page is 4.8 MiB.
    max_html_bytes: int = option(5 * 2**20, range="[1, inf)")
    # trafilatura options. favor_precision=True is datatrove/FineWeb's choice; benchmarks/extraction_f1.py gives
    # bag-of-words F1 0.958 vs 0.965 on aeb (news) but 0.711 vs 0.653 on wcxb-dev (7 page types, precision with
    # precision_rescue), so we keep trafilatura's balanced default.
    favor_precision: bool = False
    include_comments: bool = False  # datatrove's Trafilatura hard-codes False: comments are not main content
    include_tables: bool = True  # trafilatura default
    fast: bool = False  # trafilatura default: fall back to readability/jusText when its own extraction is thin
    # Precision mode only: trafilatura 1.x's last rescue, which 2.x skips there. trafilatura 1.11 (what
    # datatrove[processing]==0.10.1 resolves) ran `baseline()` on the page whenever its cascade left fewer than
    # MIN_EXTRACTED_SIZE (250) characters, in every mode (core.bare_extraction); 2.3's core.trafilatura_sequence
    # runs that stage only `if ... options.focus != "precision"`, so a listing, collection or product page whose
    # precise extraction is short comes back short or empty (None). True runs trafilatura's public `baseline()`
    # then, and takes its text when longer (2.x's own rule for that stage, #896). benchmarks/extraction_f1.py:
    # precision-mode F1 0.624 -> 0.653 on wcxb-dev (13 -> 4 pages empty, 1.11: 0.636, 4), aeb unchanged (0.965).
    # Not with deduplicate (its None means a duplicate).
    precision_rescue: bool = True
    # trafilatura 2.x renders every table as GFM rows (`| cell | cell |`, a row a line; xml.py `_escape_cell` turns
    # the newlines of a cell's paragraphs and line breaks into spaces), where 1.x, which FineWeb and RefinedWeb ran,
    # gave a cell's blocks a line each. On pages laid out with tables (common before ~2010) the whole page becomes a
    # few long lines with no line-final punctuation and many `|` words, and FineWeb's line_punct_ratio and Gopher's
    # alpha ratio drop it: of the 168 HTML pages of the Common Crawl samples, 96 have such rows. True renders a
    # layout table (one whose cells hold blocks: paragraphs, headings, lists, line breaks, tables) as its cells'
    # text, a line per block; a table of inline cells stays GFM rows. The words are the same either way (extraction
    # F1 unchanged). benchmarks/RESULTS.md "Curation throughput (issue 15): where the ratio stands": the fineweb
    # recipe keeps 28 documents of the Common Crawl samples instead of 7 (datatrove as installed, trafilatura 1.11:
    # 30).
    layout_tables_as_text: bool = True
    # True makes output depend on document order and sharding (trafilatura #778, datatrove #295).
    deduplicate: bool = False
    # mdr's patches of trafilatura and jusText (mdr/patches/trafilatura.py, justext.py): boilerplate XPaths evaluated
    # in Python by mdr.filters.fast_xpath (the same nodes, so the same text, in about 0.6x the extraction time),
    # readability skipped where it cannot win, jusText's stop-list set made once (benchmarks/RESULTS.md). False gives
    # trafilatura and jusText their own code back.
    compiled_xpath: bool = True
    # RW post-processing (RW §3.1; DCLM newline_removal_modifier / url_removal_modifier). None/False turns it off
    # (the FineWeb preset does both).
    max_consecutive_newlines: int | None = option(2, range="[1, inf)")  # 0 would join every line
    remove_urls: bool = True
    # Dropped documents keep their raw HTML; the exclusion writer stores at most this many characters of it.
    excluded_text_max_chars: int = option(100_000, range="[0, inf)")
    # Replaces trafilatura: a callable html -> text or a dotted path "package.module:function" (tests, other
    # extractors). It runs in the child process, under the same timeout.
    extract_fn: ExtractFn | str | None = None

    def check_combination(self):
        if isinstance(self.extract_fn, str):  # resolved now, so a typo fails before the run and not in each task
            try:
                function = _resolve(self.extract_fn)
            except (ImportError, AttributeError, ValueError) as error:
                raise OptionError("extract_fn", f"{self.extract_fn!r} cannot be imported: {error}") from None
            if not callable(function):
                raise OptionError("extract_fn", f"{self.extract_fn!r} is not a function")

    def trafilatura_options(self) -> dict:
        options = asdict(self)
        return {key: options[key] for key in ("favor_precision", "include_comments", "include_tables", "fast", "deduplicate")}


# ---------------------------------------------------------------------------------------------------------------
# Post-processing


def collapse_newlines(text: str, max_consecutive: int) -> str:
    """Replace every run of more than `max_consecutive` newlines by exactly `max_consecutive` (DCLM's rule)."""
    return re.sub(r"\n{%d,}" % (max_consecutive + 1), "\n" * max_consecutive, text)


@functools.cache
def _top_level_domains() -> frozenset[str]:
    """ASCII top-level domains of the Public Suffix List snapshot that ships with tldextract (offline)."""
    from tldextract.suffix_list import extract_tlds_from_suffix_list

    public_suffixes, _ = extract_tlds_from_suffix_list(pkgutil.get_data("tldextract", ".tld_set_snapshot").decode())
    return frozenset(s for s in public_suffixes if "." not in s and s.isascii())


_URL_LAST_CHAR = r"[^\s.,;:!?'\")\]}>]"  # a URL does not end with the sentence punctuation around it
_URL_PATH = rf"(?:[/?#](?:\S*{_URL_LAST_CHAR})?)?"
_URL_PORT = r"(?::\d{1,5})?"
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_IPV4_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_URL_RE = re.compile(
    r"[ \t]*(?:"
    rf"\b(?i:https?|ftp)://\S*{_URL_LAST_CHAR}"  # scheme URLs
    rf"|\b(?i:www)\d{{0,3}}\.(?:{_HOST_LABEL}\.)*{_HOST_LABEL}{_URL_PORT}{_URL_PATH}"  # www. hosts
    rf"|(?<![\d.]){_IPV4_OCTET}(?:\.{_IPV4_OCTET}){{3}}(?!\.?\d){_URL_PORT}{_URL_PATH}"  # IPv4, as DCLM
    # Bare domains: a lowercase known TLD (checked in _drop_url) keeps "e.g.", "U.S.", "3.5", "end.It" and
    # e-mail addresses out.
    rf"|(?<![\w@.-])(?:{_HOST_LABEL}\.)+(?P<tld>[a-z]{{2,63}})(?![\w-]){_URL_PORT}{_URL_PATH}"
    r")"
)


def _drop_url(match: re.Match) -> str:
    tld = match["tld"]
    return match[0] if tld is not None and tld not in _top_level_domains() else ""


def strip_urls(text: str) -> str:
    """Remove URLs (scheme URLs, www. hosts, IPv4 addresses, bare domains with a known TLD) and the blanks before them."""
    return _URL_RE.sub(_drop_url, text)


# ---------------------------------------------------------------------------------------------------------------
# The child process


# libxml2's HTML parser resolves a character reference to a C0 control (`&#27;`, `&#x1b`, `&#0012;`) or to U+FFFE/
# U+FFFF into the tree, where no XML string may hold it; trafilatura's first edit of that text makes lxml raise
# "All strings must be XML compatible" and trafilatura returns None for the whole page. The same characters raw are
# fine: trafilatura removes them (utils.INVALID_XML_CHARS, remove_control_characters), so the references go the
# same way. References to NUL (libxml2 makes it U+FFFD), TAB, LF, CR and C1 controls (mapped as windows-1252) are
# fine. Decimal: 1-8, 11, 12, 14-31, 65534, 65535; hex: 1-8, b, c, e, f, 10-1f, fffe, ffff; zeros may lead.
_REJECTED_CHAR_REF = re.compile(
    r"&#(?:0*(?:[1-8]|1[124-9]|2[0-9]|3[01]|6553[45])(?![0-9])"
    r"|[xX]0*(?:[1-8bBcCeEfF]|1[0-9a-fA-F]|[fF]{3}[eEfF])(?![0-9a-fA-F]));?"
)


def xml_safe_html(html: str) -> str:
    """The HTML without what lxml cannot hold: references to C0 controls and U+FFFE/U+FFFF, and lone surrogates.
    A page also free of those characters themselves is vouched for to the trafilatura patch, which then skips
    trafilatura's own scan for them (mdr.patches.trafilatura._CheckedXmlChars)."""
    html = _REJECTED_CHAR_REF.sub("", html)
    try:
        utf8 = html.encode("utf-8")  # ~4x faster than a regex search; the reader's decoding never makes surrogates
    except UnicodeEncodeError:
        html = SURROGATE.sub("", html)  # lxml would stop the text at the first (the rest of the page lost)
        utf8 = None
    vouch_if_xml_clean(html, utf8)
    return html


# Tags of trafilatura's XML tree (its documented XML output format) that start a line of their own: a cell holding
# one of them is part of a page layout, not of a data table.
_BLOCK_TAGS = frozenset({"p", "head", "list", "quote", "table", "lb", "code"})


def _render_as_text(cell) -> None:
    """Turn a layout table's cell into a paragraph, trimmed as trafilatura trims a cell (replace_element_text)."""
    cell.tag = "p"
    cell.attrib.clear()
    if cell.text:
        cell.text = cell.text.lstrip() if len(cell) else cell.text.strip()
    for line_break in cell.iter("lb"):  # the source's indentation around a <br> is not text
        if line_break.tail:
            line_break.tail = line_break.tail.lstrip()
        before = line_break.getprevious()
        if before is not None and before.tail:
            before.tail = before.tail.rstrip()
        elif before is None and line_break.getparent().text:
            line_break.getparent().text = line_break.getparent().text.rstrip()
    if len(cell) and cell[-1].tail:
        cell[-1].tail = cell[-1].tail.rstrip()


def layout_tables_as_text(body) -> bool:
    """Render the layout tables of trafilatura's extracted tree as text blocks (ExtractionConfig.layout_tables_as_text),
    innermost first; True when there was one."""
    found = False
    for table in reversed(list(body.iter("table"))):
        cells = [cell for row in table.iterchildren("row") for cell in row.iterchildren("cell")]
        if any(child.tag in _BLOCK_TAGS for cell in cells for child in cell):
            found = True
            for cell in cells:
                _render_as_text(cell)
    return found


def _trafilatura_text(html: str, options: dict, layout_tables: bool) -> str | None:
    """trafilatura.extract's plain text, with its layout tables rendered as text when `layout_tables`."""
    import trafilatura

    if not layout_tables:
        return trafilatura.extract(html, **options)
    from trafilatura.utils import normalize_unicode
    from trafilatura.xml import xmltotxt

    # What trafilatura.extract does for "txt" without metadata (core.determine_returnstring), between the two steps;
    # xmltotxt and normalize_unicode are its module functions, so test_extraction checks that a page without a layout
    # table gets extract()'s text exactly (trafilatura pinned to 2.3.x in pyproject.toml). output_format "txt", as
    # extract() passes it: bare_extraction's default "python" renders the text once more (document.text, core.py
    # 2.3), which this text replaces: 0.14 of the Common Crawl samples' 2.3 CPU seconds of extraction
    # (benchmarks/RESULTS.md, issue 15).
    document = trafilatura.bare_extraction(html, as_dict=False, output_format="txt", **options)
    if document is None:
        return None
    changed = layout_tables_as_text(document.body)
    if document.commentsbody is not None:
        changed = layout_tables_as_text(document.commentsbody) or changed
    text = xmltotxt(document.body, False)
    if document.commentsbody is not None:
        text = f"{text}\n{xmltotxt(document.commentsbody, False)}".strip()
    if changed:  # the source's blank lines and indentation inside the cells; trafilatura's own lines are trimmed
        text = "\n".join(line.strip() for line in text.splitlines() if line and not line.isspace())
    return normalize_unicode(text)


def trafilatura_extract(html: str, options: dict, precision_rescue: bool = False,
                        layout_tables: bool = False) -> str | None:
    import trafilatura

    html = xml_safe_html(html)
    text = _trafilatura_text(html, options, layout_tables)
    # not with deduplicate: its None says "seen before", and a rescue would bring the duplicate back
    thin = len(text or "") < _min_extracted_size() and not options.get("deduplicate")
    if precision_rescue and options.get("favor_precision") and thin:
        _, rescued, rescued_chars = trafilatura.baseline(html)  # see ExtractionConfig.precision_rescue
        if rescued_chars > len(text or ""):
            return rescued
    return text


@functools.cache
def _min_extracted_size() -> int:
    """trafilatura's threshold under which its extraction is thin (settings.cfg MIN_EXTRACTED_SIZE, 250 in 1.11-2.3)."""
    from trafilatura.settings import DEFAULT_CONFIG

    return DEFAULT_CONFIG.getint("DEFAULT", "MIN_EXTRACTED_SIZE")


def _resolve(extract_fn: ExtractFn | str) -> ExtractFn:
    if callable(extract_fn):
        return extract_fn
    module, _, attribute = extract_fn.rpartition(":") if ":" in extract_fn else extract_fn.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


class ExtractionTimeout(Exception):
    pass


class ExtractionProcessDied(Exception):
    pass


class ExtractionError(Exception):
    pass


_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_MAX_DETAIL_CHARS = 200  # an exception message can quote the page; drop_detail stays a short string


def _serve(conn, parent_end, extract: ExtractFn) -> None:
    """Child loop: receive HTML, send back ("ok", text) or ("error", message), until the parent hangs up."""
    parent_end.close()  # else this process keeps its own pipe open and never sees the parent leave
    if sys.platform == "linux":
        # Die with the parent even when stuck in a loop, and be the OOM killer's first choice.
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    while True:
        try:
            html = conn.recv()
        except EOFError:
            return
        try:
            reply = ("ok", extract(html))
        except Exception as e:
            reply = ("error", f"{type(e).__name__}: {e}")
        conn.send(reply)


class ExtractionProcess:
    """Runs `extract` in a forked child; a call that overruns `timeout_s` kills the child, the next call forks anew.

    Fork (not spawn) so that children inherit the imported, warmed-up trafilatura and restart in milliseconds.
    """

    def __init__(self, extract: ExtractFn, timeout_s: float):
        self.extract = extract
        self.timeout_s = timeout_s
        self.process = None
        self.conn = None

    def __call__(self, html: str) -> str | None:
        if self.process is None:
            self._start()
        try:
            self.conn.send(html)
            finished = self.conn.poll(self.timeout_s)  # also True when the child died: recv then raises EOFError
            if not finished:
                self.close()
                raise ExtractionTimeout
            status, value = self.conn.recv()
        except (EOFError, OSError) as e:
            self.close()
            raise ExtractionProcessDied from e
        if status == "error":
            raise ExtractionError(value)
        return value

    def _start(self) -> None:
        context = multiprocessing.get_context("fork")
        self.conn, child_end = context.Pipe()
        self.process = context.Process(target=_serve, args=(child_end, self.conn, self.extract), daemon=True)
        self.process.start()
        child_end.close()  # only the child holds it now, so its death reads as EOF here

    def close(self) -> None:
        """Kill the child (no graceful stop: it may be stuck in a loop) and reap it."""
        if self.process is None:
            return
        self.conn.close()
        self.process.kill()
        self.process.join()
        self.process.close()
        self.process = None
        self.conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


# ---------------------------------------------------------------------------------------------------------------
# The stage


class ExtractionStage(DecidingFilter):
    """HTML -> main-content text with trafilatura, then RW's newline cap and URL removal; WET text is only post-processed.

    Drops with reasons too_large, timeout, broken_process, extract_error, empty.
    """

    name = "extract"
    type = "🛢 - EXTRAC"
    # No `_requires_dependencies`: they are mdr's own dependencies (pyproject.toml), and datatrove 0.10.1's check
    # (PipelineStep.__new__ -> _is_distribution_available) parses the metadata of every installed distribution once
    # per name, in the driver and again in every task process that unpickles the step: 0.35 s per process here
    # (benchmarks/RESULTS.md "Profile (issue 15.1)").

    def __init__(self, config: ExtractionConfig = None, exclusion_writer: DiskWriter = None):
        super().__init__(exclusion_writer)
        self.config = config or ExtractionConfig()

    def postprocess(self, text: str) -> str:
        if self.config.remove_urls:
            text = strip_urls(text)
        if self.config.max_consecutive_newlines is not None:
            text = collapse_newlines(text, self.config.max_consecutive_newlines)
        return text

    def _extract_fn(self) -> ExtractFn:
        if self.config.extract_fn is not None:
            return _resolve(self.config.extract_fn)
        from mdr.patches import justext as justext_patch
        from mdr.patches import trafilatura as patch

        # before the warm-up and the fork, so that the child process inherits them
        for module in (patch, justext_patch):
            module.install() if self.config.compiled_xpath else module.uninstall()
        extract = functools.partial(trafilatura_extract, options=self.config.trafilatura_options(),
                                    precision_rescue=self.config.precision_rescue,
                                    layout_tables=self.config.layout_tables_as_text)
        extract("<html><body><p>warm-up</p></body></html>")  # import and warm up once, before forking
        return extract

    def extract_document(self, doc: Document, extractor: ExtractionProcess) -> bool | tuple[bool, str]:
        """Replace doc.text by its post-processed main content: True, or `drop(...)` when it must be dropped."""
        if doc.metadata.get("is_wet"):
            text = doc.text
        else:
            html_bytes = len(doc.text.encode("utf-8", errors="replace"))
            if html_bytes > self.config.max_html_bytes:
                return drop(doc, "too_large", f"HTML is {html_bytes} bytes > {self.config.max_html_bytes}")
            try:
                text = extractor(doc.text)
            except ExtractionTimeout:
                return drop(doc, "timeout", f"extraction exceeded {self.config.timeout_s} s")
            except ExtractionProcessDied:
                return drop(doc, "broken_process", "extraction process died (crash or out of memory)")
            except ExtractionError as e:
                return drop(doc, "extract_error", f"extraction raised {e}"[:_MAX_DETAIL_CHARS])
        text = self.postprocess(text or "")
        if not text.strip():
            return drop(doc, "empty", "no text left after extraction and post-processing")
        doc.text = text
        return True

    def decisions(self, data: DocumentsPipeline, rank: int,
                  world_size: int) -> Iterator[tuple[Document, bool | tuple[bool, str]]]:
        with ExtractionProcess(self._extract_fn(), self.config.timeout_s) as extractor:
            for doc in data:
                with self.track_time():
                    decision = self.extract_document(doc, extractor)
                if decision is not True:  # a dropped document goes only to the exclusion writer: its HTML, capped
                    doc.metadata["text_truncated"] = len(doc.text) > self.config.excluded_text_max_chars
                    doc.text = doc.text[: self.config.excluded_text_max_chars]
                yield doc, decision
