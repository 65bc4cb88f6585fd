"""Text on its way to a terminal: page content and file names are untrusted, so nothing mdr or a library it runs
prints may drive the terminal.

A crawled page's URL, a record's bytes or an input file's name can hold escape sequences: ESC [2J clears the screen,
OSC (ESC ] ... BEL) sets the window title or writes to the clipboard on some terminals, C1 controls (U+0080-U+009F)
do the same on terminals that take 8-bit controls, bidirectional overrides reorder what is shown. `safe` is the one
function that neutralises them; `mdr inspect`, the CLI's messages, the progress line and every console log sink
(`ConsoleStream`) go through it. Libraries that log with Python's `logging` and no handler would print straight to
stderr (logging's last resort): `route_python_logging` sends their records to loguru, whose console sink neutralises
them, and `log_only` sends warcio's, which quote a record's header bytes, to the task log only.

File names are bytes on Linux: Python hands an undecodable one to us as a str with surrogate escapes (PEP 383,
`bad\\udcff.warc`), which no UTF-8 encoder (Parquet, HTML, a log file) accepts. `utf8_path` shows those bytes as
`\\xNN` (and a backslash as `\\\\`, so that no two names are stored alike), the rendering stored wherever a file name
becomes data.
"""

from __future__ import annotations

import logging
import re
import sys

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional marks, embeddings, overrides and isolates
# (Unicode TR9: LRM, RLM, LRE..RLO, LRI..PDI).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# A lone surrogate: no UTF-8 encoder takes it (libxml2's neither: filters/extraction.py removes them from pages).
SURROGATE = re.compile("[\ud800-\udfff]")
# What `utf8_path` escapes: surrogates, and the backslash that starts its escapes.
_NAME_ESCAPES = re.compile("[\\\\\ud800-\udfff]")


def _escape_surrogate(match: re.Match) -> str:
    code = ord(match.group())
    # surrogateescape (PEP 383) maps an undecodable byte 0x80-0xFF to U+DC80-U+DCFF, the only surrogates os.fsdecode
    # makes; other lone surrogates are noise
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else "\ufffd"


def _escape_name(match: re.Match) -> str:
    return "\\\\" if match.group() == "\\" else _escape_surrogate(match)


def utf8_path(path: str) -> str:
    """`path` as valid UTF-8 text, one-to-one: the bytes of an undecodable file name (surrogate escapes) as `\\xNN`,
    and a backslash as `\\\\`, so that a file literally named `bad\\xff.warc` is not taken for one whose name holds
    the byte 0xFF (the stored name decodes back with Python's "unicode_escape"). The same as `path` for every name
    that is valid UTF-8 and holds no backslash."""
    return _NAME_ESCAPES.sub(_escape_name, path)


def safe(text: str) -> str:
    """Text that cannot drive the terminal: C0/C1 controls (but newline and tab) and bidi controls shown as U+FFFD,
    undecodable file name bytes as `\\xNN`."""
    return _UNSAFE.sub("\ufffd", SURROGATE.sub(_escape_surrogate, text))


def one_line(text: str) -> str:
    """`safe` text on one line: a newline (a file name may hold one) shown as `\\n`."""
    return safe(text).replace("\n", "\\n")


class ConsoleStream:
    """A text stream (stderr) that writes everything through `safe`: the sink of console logging, so that log
    messages naming a file, a URL or a record's bytes cannot drive the terminal. It claims to be no terminal, so
    loguru adds no colours (their escape sequences would be neutralised too). Without a stream, it writes to
    whatever sys.stderr is at the time (a test's captured stderr, a stderr that was replaced since)."""

    def __init__(self, stream=None):
        self._stream = stream

    @property
    def stream(self):
        return self._stream if self._stream is not None else sys.stderr

    def write(self, text: str) -> int:
        return self.stream.write(safe(text))

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False


# loguru `extra` key of records meant for the task log only: the console sink (add_console_sink) drops them.
LOG_ONLY = "log_only"


class _ToLoguru(logging.Handler):
    """Python `logging` records into loguru (datatrove's logger) under their own name and line; `log_only` marks them
    for the task log only."""

    def __init__(self, log_only: bool):
        super().__init__()
        self.log_only = log_only

    def emit(self, record: logging.LogRecord) -> None:
        from datatrove.utils.logging import logger

        where = {"name": record.name, "function": record.funcName, "line": record.lineno}
        level = record.levelname if record.levelname in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") else \
            record.levelno
        logger.patch(lambda r: r.update(where)).bind(**{LOG_ONLY: self.log_only}).log(level, record.getMessage())


def log_only(library: str) -> None:
    """Records of `library`'s Python logger go to the task log, never to the terminal: warcio logs
    "Replacing spaces in invalid WARC-Target-URI: <URI>" (warcio recordloader.py), the URI's bytes as in the file."""
    library_logger = logging.getLogger(library)
    if not any(isinstance(handler, _ToLoguru) for handler in library_logger.handlers):
        library_logger.addHandler(_ToLoguru(log_only=True))
    library_logger.propagate = False  # not also to a root handler someone configured (Ray does)


def route_python_logging() -> None:
    """Warnings of libraries whose loggers have no handler (courlan, ...) go to loguru, so to the task log and
    through the neutralising console sink, instead of Python's last resort, which writes them raw to stderr."""
    if not isinstance(logging.lastResort, _ToLoguru):
        logging.lastResort = _ToLoguru(log_only=False)
        logging.lastResort.setLevel(logging.WARNING)  # as the last resort it replaces


def console_filter(record: dict) -> bool:
    """Whether a loguru record goes to the console: not those `log_only` sent to the task log."""
    return not record["extra"].get(LOG_ONLY, False)


def set_console_level(level: str) -> None:
    """Console logging of datatrove (loguru) at `level`, through `add_console_sink`, in place of every sink there was
    (datatrove's raw stderr sink at DEBUG, added when loguru is imported); task logs are added after it, per task.
    `mdr` calls it first thing, so the driver process too prints only neutralised warnings and errors."""
    # datatrove's logging module, not loguru's: importing it the first time runs datatrove's setup_default_logger,
    # which replaces every sink with a raw stderr one; it must run before this, not later (on the first import of
    # datatrove by a verb or by _ToLoguru.emit).
    from datatrove.utils.logging import logger

    logger.remove()
    add_console_sink(level)


def add_console_sink(level: str, **options) -> None:
    """The console sink of every mdr process: this, not datatrove's `logger.add(sys.stderr)` (datatrove.utils.logging
    setup_default_logger and add_task_logger, which set_console_level and mdr.patches.datatrove replace). Log messages
    name input files and quote records (warcio's "Replacing spaces in invalid WARC-Target-URI: <URI>", the reader's
    warnings), so the sink writes through terminal.ConsoleStream: no escape sequence of a page reaches the terminal.
    Task log files keep messages as they were; records of libraries routed with terminal.log_only go there only, and
    Python logging's last resort (raw stderr) comes here too."""
    from loguru import logger  # datatrove's logger; imported here, so that importing this module stays cheap

    route_python_logging()
    logger.add(ConsoleStream(), level=level, colorize=False, filter=console_filter, **options)
