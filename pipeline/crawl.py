"""Common Crawl inputs of `mdr run`, and the resumable reader of remote WARCs.

- `cc:CC-MAIN-2024-10[/SEGMENT]` expands to the crawl's WARC URLs, listed in its `crawl-data/<crawl>/warc.paths.gz`
  (Common Crawl's "Get Started" page: one path per line, relative to https://data.commoncrawl.org/ or
  s3://commoncrawl/). `--sample N` draws N of them with `--seed`, `--limit N` takes the first N.
- `@FILE` reads paths or URLs from FILE, one per line (blank lines and `#` comments ignored); a relative Common Crawl
  path (`crawl-data/...`) is resolved against the endpoint, any other path is a local path as `--input` takes it.
- `RemoteFile` streams an http(s) URL, and on a dropped connection or a 5xx/429 answer retries with exponential
  backoff (honouring Retry-After, RFC 9110 §10.2.3) and resumes at the byte it reached with a Range request
  (RFC 9110 §14.2); a server that ignores Range (a 200 with the whole body, which §14.2 allows) is read from the
  start with the bytes already delivered skipped. Records are thus neither lost nor read twice. A file that still
  fails raises `RemoteReadError`, which the reader counts as the `unreachable` drop reason.

The endpoint is `--cc-endpoint URL`, else MDR_CC_ENDPOINT, else https://data.commoncrawl.org/. The retry settings
come from MDR_HTTP_ATTEMPTS, MDR_HTTP_BACKOFF_S and MDR_HTTP_TIMEOUT_S (tests set small ones), read in every task.
"""

from __future__ import annotations

import email.utils
import gzip
import http.client
import io
import os
import random
import re
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone

from datatrove.utils.logging import logger

from mdr import __version__
from mdr.errors import UsageError

DEFAULT_ENDPOINT = "https://data.commoncrawl.org/"
ENDPOINT_ENV = "MDR_CC_ENDPOINT"
# Main crawls have been named CC-MAIN-<year>-<ISO week> since 2013 (commoncrawl.org/get-started lists them all).
CRAWL_NAME = re.compile(r"CC-MAIN-\d{4}-\d{2}")
SEGMENT_ID = re.compile(r"\d+\.\d+")  # segments/1707947473347.0/ in the WARC paths
USER_AGENT = f"mdr/{__version__} (+https://github.com/; Common Crawl reader)"
SIZE_QUERIES = 16  # HEAD requests in flight at once when sizing the inputs


def is_http(path: str) -> bool:
    return path.startswith(("http://", "https://"))


# ---------------------------------------------------------------------------------------------------------------
# Retries


def _env_number(name: str, default: float, low: float, kind=float) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = kind(value)
    except ValueError:
        number = None
    if number is None or not number >= low or number != number or number == float("inf"):
        raise UsageError(f"{name} must be a number of at least {low:g}, got {value!r}")
    return number


@dataclass(frozen=True)
class RetryPolicy:
    """How a remote read retries: `attempts` tries per failure (a try that delivers bytes starts the count again),
    waiting backoff_s · 2^k (k = 0, 1, ...; halved to full by random jitter, so that tasks cut off together do not
    come back together), at most max_wait_s, or what Retry-After asks up to max_wait_s."""

    attempts: int = 8  # ours: 1+2+...+64 s ≈ 2 min of waiting covers a server restart or a throttling window
    backoff_s: float = 1.0
    max_wait_s: float = 120.0
    timeout_s: float = 60.0  # a socket silent this long counts as a dropped connection

    @classmethod
    def from_env(cls) -> "RetryPolicy":
        """The policy of MDR_HTTP_ATTEMPTS, MDR_HTTP_BACKOFF_S, MDR_HTTP_TIMEOUT_S (UsageError for a bad value)."""
        return cls(attempts=int(_env_number("MDR_HTTP_ATTEMPTS", cls.attempts, 1, int)),
                   backoff_s=_env_number("MDR_HTTP_BACKOFF_S", cls.backoff_s, 0),
                   timeout_s=_env_number("MDR_HTTP_TIMEOUT_S", cls.timeout_s, 0.001))

    def wait_s(self, failure: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_wait_s)
        return min(self.max_wait_s, self.backoff_s * 2 ** failure) * random.uniform(0.5, 1.0)


class RemoteReadError(OSError):
    """A remote file that could not be read: an HTTP error that no retry mends (404, 403...), or retries used up."""


class RetriesExhausted(RemoteReadError):
    """The server still failed (dropped connections, 5xx, 429) after every retry: the reader's `unreachable`."""


class _Retry(Exception):
    """A failure worth another try, with the wait the server asked for (Retry-After), if any."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: delay-seconds or an HTTP-date (RFC 9110 §10.2.3); None if absent or malformed."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _is_retried_status(status: int) -> bool:
    return status == 429 or 500 <= status <= 599  # RFC 9110 §15.6 (server errors), RFC 6585 §4 (too many requests)


_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class RemoteFile(io.RawIOBase):
    """A seekable, read-only http(s) file that survives dropped connections and transient server errors.

    Each (re)connection asks for the bytes from the current position on (`Range: bytes=N-`); the read delivers every
    byte of the file once, in order, whatever the connections do. A response shorter than its Content-Length (the
    connection closed early: http.client returns b"" then, without raising) counts as a dropped connection. The
    file's ETag, when the server gives one, must stay the same across connections: a file replaced mid-read would
    otherwise splice two files. `failure` holds the error once the read gave up.
    """

    def __init__(self, url: str, policy: RetryPolicy | None = None, warn: bool = True):
        super().__init__()
        self.url, self._log = url, logger.warning if warn else logger.debug
        self.policy = policy or RetryPolicy.from_env()
        self.failure: RemoteReadError | None = None
        self.retries = 0  # over the whole read, for the log
        self._position = 0
        self._response = None
        self._owed: int | None = None  # bytes the current response still owes (Content-Length), if known
        self._size: int | None = None
        self._etag: str | None = None
        self._warned_range = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._position
        elif whence == io.SEEK_END:
            if self._size is None:
                raise OSError(f"{self.url}: size unknown, cannot seek from the end")
            offset += self._size
        if offset < 0:
            raise ValueError(f"negative seek position {offset}")
        if offset != self._position:
            self._disconnect()
            self._position = offset
        return offset

    def close(self) -> None:
        self._disconnect()
        super().close()

    def readinto(self, buffer) -> int:
        if self.failure is not None:
            raise self.failure
        if not len(buffer):
            return 0
        failures, last = 0, ""
        while True:
            try:
                if self._response is None and not self._connect():
                    return 0  # at the end of the file
                n = self._response.readinto(buffer)
                if n == 0 and self._owed:
                    raise _Retry(f"connection closed {self._owed:,} bytes before the end of the response")
                self._position += n
                if self._owed is not None:
                    self._owed -= n
                return n
            except _Retry as error:
                last, retry_after = str(error), error.retry_after
            except (OSError, http.client.HTTPException) as error:  # reset, refused, timed out, IncompleteRead...
                if isinstance(error, RemoteReadError):
                    self.failure = error
                    raise
                reason = error.reason if isinstance(error, urllib.error.URLError) else error  # not "<urlopen error>"
                last, retry_after = f"{type(error).__name__}: {reason}", None
            self._disconnect()
            failures += 1
            if failures >= self.policy.attempts:
                self.failure = RetriesExhausted(f"{self.url}: gave up after {failures} attempts at byte "
                                               f"{self._position:,}: {last}")
                raise self.failure
            self.retries += 1
            wait = self.policy.wait_s(failures - 1, retry_after)
            self._log(f"{self.url}: {last}; retrying from byte {self._position:,} in {wait:.1f}s "
                           f"(attempt {failures + 1} of {self.policy.attempts})")
            time.sleep(wait)

    def _connect(self) -> bool:
        """Opens a response delivering the bytes from `_position` on; False at the end of the file."""
        if self._size is not None and self._position >= self._size:
            return False
        headers = {"User-Agent": USER_AGENT}
        if self._position:
            headers["Range"] = f"bytes={self._position}-"
        try:
            response = urllib.request.urlopen(urllib.request.Request(self.url, headers=headers),
                                              timeout=self.policy.timeout_s)
        except urllib.error.HTTPError as error:
            error.close()
            if _is_retried_status(error.code):
                raise _Retry(f"HTTP {error.code} {error.reason}", _retry_after(error.headers.get("Retry-After")))
            if error.code == 416 and self._size is None:  # past the end: the header says where the end is
                match = re.fullmatch(r"bytes \*/(\d+)", error.headers.get("Content-Range") or "")
                if match and self._position >= int(match.group(1)):
                    self._size = int(match.group(1))
                    return False
            raise RemoteReadError(f"{self.url}: HTTP {error.code} {error.reason}") from None
        etag = response.headers.get("ETag")
        if etag and self._etag and etag != self._etag:
            response.close()
            raise RemoteReadError(f"{self.url}: the file changed during the read (ETag {self._etag} -> {etag})")
        self._etag = self._etag or etag
        length = response.headers.get("Content-Length")
        self._owed = int(length) if length and length.isdigit() else None
        if response.status == 206:
            match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range") or "")
            if not match or int(match.group(1)) != self._position:
                response.close()
                raise RemoteReadError(f"{self.url}: asked for bytes from {self._position}, the server answered "
                                      f"{response.headers.get('Content-Range')!r}")
            if match.group(3) != "*":
                self._size = int(match.group(3))
            self._response = response
            return True
        if self._owed is not None and self._size is None:
            self._size = self._owed
        self._response = response
        if self._position:  # 200: the server ignored Range and sends the whole file again
            if not self._warned_range:
                self._log(f"{self.url}: the server ignores Range requests; skipping the {self._position:,} "
                               f"bytes already read")
                self._warned_range = True
            self._skip(self._position)
        return True

    def _skip(self, count: int) -> None:
        """Reads and discards the first `count` bytes of a whole-file response (a drop here is retried)."""
        chunk = bytearray(min(count, 1 << 20))
        while count:
            n = self._response.readinto(memoryview(chunk)[:min(count, len(chunk))])
            if not n:
                raise _Retry(f"connection closed while skipping to byte {self._position:,}")
            count -= n
            if self._owed is not None:
                self._owed -= n

    def _disconnect(self) -> None:
        if self._response is not None:
            try:
                self._response.close()
            except Exception:  # a broken connection may fail to close; it is dropped either way
                pass
            self._response, self._owed = None, None


def open_remote(url: str) -> io.BufferedReader:
    """`url` as a buffered binary file whose reads retry and resume (RemoteFile)."""
    return io.BufferedReader(RemoteFile(url), buffer_size=1 << 20)


# ---------------------------------------------------------------------------------------------------------------
# Sizes


def remote_size(url: str, timeout_s: float | None = None) -> int | None:
    """The size of `url` from a HEAD request (http), or fsspec's info (other schemes); None when unknown."""
    if is_http(url):
        request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": USER_AGENT})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s or RetryPolicy.timeout_s) as response:
                length = response.headers.get("Content-Length")
        except (OSError, http.client.HTTPException, ValueError):
            return None
        return int(length) if length and length.isdigit() else None
    try:
        import fsspec.core

        fs, path = fsspec.core.url_to_fs(url)
        size = fs.info(path).get("size")
    except Exception:  # missing file, no permission, a backend that does not know: unknown
        return None
    return int(size) if isinstance(size, int) else None


def input_sizes(files: list[str]) -> list[int | None]:
    """The size of each input (local paths by stat, URLs by HEAD requests, SIZE_QUERIES at a time); None if unknown."""
    def size(path: str) -> int | None:
        if "://" in path:
            return remote_size(path)
        try:
            return os.path.getsize(path)
        except OSError:
            return None

    with ThreadPoolExecutor(SIZE_QUERIES) as pool:
        return list(pool.map(size, files))


# ---------------------------------------------------------------------------------------------------------------
# Expanding cc: and @file inputs


@dataclass(frozen=True)
class CrawlOptions:
    endpoint: str | None = None  # --cc-endpoint; None: MDR_CC_ENDPOINT, else DEFAULT_ENDPOINT
    sample: int | None = None
    limit: int | None = None
    seed: int = 0

    def resolved_endpoint(self) -> str:
        endpoint = self.endpoint or os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT
        if "://" not in endpoint:
            raise UsageError(f"Common Crawl endpoint {endpoint!r} is no URL (https://..., s3://commoncrawl/)")
        scheme = endpoint.split("://", 1)[0].lower()
        if scheme not in ("http", "https"):
            try:
                import fsspec

                fsspec.get_filesystem_class(scheme)
            except (ImportError, ValueError) as error:
                hint = " (pip install s3fs)" if scheme in ("s3", "s3a") else ""
                raise UsageError(f"Common Crawl endpoint {endpoint}: no filesystem for {scheme}://{hint}: "
                                 f"{str(error).splitlines()[0] if str(error) else type(error).__name__}") from None
        return endpoint if endpoint.endswith("/") else endpoint + "/"


def crawl_request(inputs: list[str], options: CrawlOptions) -> dict | None:
    """What the files of `inputs`' cc: items are drawn by (the inputs as given, --sample, --limit, --seed and the
    endpoint), as run.json records it; None without a cc: input. The same request draws the same files from the same
    listing, so a resume may take them from run.json (runner.recorded_inputs)."""
    if not any(item.startswith("cc:") for item in inputs):
        return None
    return {"inputs": list(inputs), "sample": options.sample, "limit": options.limit, "seed": options.seed,
            "endpoint": options.resolved_endpoint()}


def expand_crawl_inputs(inputs: list[str], options: CrawlOptions) -> list[str]:
    """`inputs` with each `cc:CRAWL[/SEGMENT]` replaced by its WARC URLs and each `@FILE` by the paths it lists; other
    inputs as they are. UsageError for a malformed crawl name, --sample/--limit without a cc: input, or a paths
    listing that cannot be read."""
    crawls = [item for item in inputs if item.startswith("cc:")]
    if (options.sample is not None or options.limit is not None) and not crawls:
        flag = "--sample" if options.sample is not None else "--limit"
        raise UsageError(f"{flag} draws from a crawl's WARC files: give --input cc:CC-MAIN-YYYY-WW")
    if options.sample is not None and options.limit is not None:
        raise UsageError("--sample and --limit exclude each other: --sample N draws N files, --limit N takes the "
                         "first N")
    for flag, value in (("--sample", options.sample), ("--limit", options.limit)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}")
    for item in crawls:
        _parse_crawl(item)  # every name checked before any request
    expanded = []
    for item in inputs:
        if item.startswith("cc:"):
            expanded.extend(crawl_urls(item, options.resolved_endpoint(), options))
        elif item.startswith("@"):
            expanded.extend(_listed_paths(item[1:], options))
        else:
            expanded.append(item)
    return expanded


def _parse_crawl(item: str) -> tuple[str, str | None]:
    spec = item[len("cc:"):]
    crawl, _, segment = spec.partition("/")
    if not CRAWL_NAME.fullmatch(crawl):
        raise UsageError(f"unknown crawl name {crawl!r} in {item!r}: Common Crawl's main crawls are named "
                         f"CC-MAIN-YYYY-WW, e.g. cc:CC-MAIN-2024-10")
    if segment and not SEGMENT_ID.fullmatch(segment):
        raise UsageError(f"segment {segment!r} in {item!r} is no segment id (digits.digits, e.g. 1707947473347.0)")
    return crawl, segment or None


def crawl_urls(item: str, endpoint: str, options: CrawlOptions) -> list[str]:
    """The WARC URLs of `cc:CRAWL[/SEGMENT]` at `endpoint`: all, the first --limit, or --sample drawn with --seed
    (random.Random(seed).sample over the listing, kept in the listing's order)."""
    crawl, segment = _parse_crawl(item)
    listing = f"{endpoint}crawl-data/{crawl}/warc.paths.gz"
    paths = [line for line in _read_listing(listing, item).splitlines() if line.strip()]
    if segment:
        paths = [path for path in paths if f"/segments/{segment}/" in path]
        if not paths:
            raise UsageError(f"crawl {crawl} has no segment {segment} ({listing})")
    if options.sample is not None:
        if options.sample > len(paths):
            raise UsageError(f"--sample {options.sample} but {item} has {len(paths)} WARC file(s)")
        chosen = sorted(random.Random(options.seed).sample(range(len(paths)), options.sample))
        paths = [paths[index] for index in chosen]
    elif options.limit is not None:
        paths = paths[:options.limit]
    return [endpoint + path.strip().lstrip("/") for path in paths]


def _read_listing(url: str, item: str) -> str:
    """The text of a crawl's warc.paths.gz (gzip), or a one-line UsageError naming the URL and what failed."""
    try:
        if is_http(url):
            # fewer tries than a WARC: a mistyped endpoint should fail in seconds, not after minutes of backoff; the
            # retries logged at debug level, so that a failure is the one line of its UsageError
            policy = RetryPolicy.from_env()
            policy = RetryPolicy(min(policy.attempts, 3), policy.backoff_s, policy.max_wait_s, policy.timeout_s)
            with io.BufferedReader(RemoteFile(url, policy, warn=False)) as file:
                data = file.read()
        else:
            import fsspec

            with fsspec.open(url, "rb") as file:
                data = file.read()
        return gzip.decompress(data).decode("utf-8")
    except UsageError:
        raise
    except Exception as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        if url not in message:
            message = f"{url}: {message}"
        raise UsageError(f"cannot list the WARC files of {item}: {message}") from None


def _listed_paths(list_file: str, options: CrawlOptions) -> list[str]:
    """The paths and URLs of an @FILE input: one per line, blank lines and # comments left out; `crawl-data/...`
    resolved against the endpoint."""
    try:
        with open(list_file, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise UsageError(f"cannot read input list {list_file!r}: {reason}") from None
    paths = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        paths.append(options.resolved_endpoint() + line if line.startswith("crawl-data/") else line)
    if not paths:
        raise UsageError(f"input list {list_file!r} names no file")
    return paths
