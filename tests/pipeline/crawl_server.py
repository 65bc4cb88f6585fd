"""A local Common Crawl for tests: a crawl layout (crawl-data/<crawl>/warc.paths.gz and the WARC files under their
paths) served over HTTP from a thread, with byte ranges (RFC 9110 §14) and the faults a remote read meets: connections
cut mid-file, 503 and 429 answers for a while, a file whose server ignores Range, a file that always fails."""

from __future__ import annotations

import gzip
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


def build_crawl(root: Path, files: list[Path], crawl: str, segments: int = 2) -> list[str]:
    """Lays `files` out as crawl `crawl` under `root` (symbolic links, no copies), spread over `segments` segments,
    and writes its warc.paths.gz; returns the paths it lists, in its order."""
    paths = []
    for index, file in enumerate(files):
        segment = f"17079474733{index % segments:02d}.{index % segments}"
        path = f"crawl-data/{crawl}/segments/{segment}/warc/{file.name}"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(file.resolve(), root / path)
        paths.append(path)
    listing = root / "crawl-data" / crawl / "warc.paths.gz"
    listing.write_bytes(gzip.compress("".join(f"{p}\n" for p in paths).encode()))
    return paths


class Faults:
    """What the server does wrong, per URL path (None: every path). Each entry is used up by the requests it hits."""

    def __init__(self):
        self.lock = threading.Lock()
        self.cuts: dict[str | None, list[int]] = {}  # path -> [body bytes sent before closing, GETs left]
        self.statuses: list[list] = []  # [path, status, requests left (None: always), Retry-After]
        self.ignore_range: set[str] = set()
        self.log: list[tuple[str, str, str | None, int]] = []  # (method, path, Range header, status)

    def cut(self, path: str | None, after: int, times: int) -> None:
        self.cuts[path] = [after, times]

    def answer(self, status: int, times: int | None, path: str | None = None, retry_after: str | None = None) -> None:
        self.statuses.append([path, status, times, retry_after])

    def _status(self, path: str):
        with self.lock:
            for entry in self.statuses:
                if entry[0] in (None, path) and (entry[2] is None or entry[2] > 0):
                    if entry[2] is not None:
                        entry[2] -= 1
                    return entry[1], entry[3]
        return None, None

    def _cut(self, path: str) -> int | None:
        with self.lock:
            entry = self.cuts.get(path, self.cuts.get(None))  # a path's own entry, once there is one
            if entry and entry[1] > 0:
                entry[1] -= 1
                return entry[0]
        return None


class CrawlServer:
    """Serves `root` on 127.0.0.1 (an ephemeral port) until `close()`; `url` ends with a slash."""

    def __init__(self, root: Path):
        self.root, self.faults = root.resolve(), Faults()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self):
                server._answer(self, body=False)

            def do_GET(self):
                server._answer(self, body=True)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def gets(self, path: str) -> list[tuple[str | None, int]]:
        """(Range header, status) of each GET of `path`."""
        return [(r, s) for method, p, r, s in self.faults.log if method == "GET" and p == path]

    def _answer(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        path = unquote(urlsplit(handler.path).path)
        asked = handler.headers.get("Range")
        file = self.root / path.lstrip("/")  # the layout's links lead out of root; ".." may not
        status, retry_after = self.faults._status(path)
        if status is None and not (file.is_file() and ".." not in Path(path).parts):
            status = 404
        if status is not None:
            self.faults.log.append((handler.command, path, asked, status))
            handler.send_response(status)
            if retry_after is not None:
                handler.send_header("Retry-After", retry_after)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        data = file.read_bytes()
        start, end = 0, len(data)
        match = _RANGE.fullmatch(asked or "")
        status = 200
        if match and path not in self.faults.ignore_range:
            start = int(match.group(1))
            end = min(end, int(match.group(2)) + 1) if match.group(2) else end
            status = 206 if start < len(data) else 416
        self.faults.log.append((handler.command, path, asked, status))
        handler.send_response(status)
        handler.send_header("ETag", f'"{len(data)}-{file.stat().st_mtime_ns}"')
        handler.send_header("Accept-Ranges", "none" if path in self.faults.ignore_range else "bytes")
        if status == 416:
            handler.send_header("Content-Range", f"bytes */{len(data)}")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if status == 206:
            handler.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        handler.send_header("Content-Length", str(end - start))
        handler.end_headers()
        if not body:
            return
        cut = self.faults._cut(path)
        handler.wfile.write(data[start:end] if cut is None else data[start:min(end, start + cut)])
        handler.wfile.flush()
        if cut is not None:  # the connection drops mid-body: the client sees fewer bytes than Content-Length
            handler.close_connection = True
