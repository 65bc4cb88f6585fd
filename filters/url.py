"""URL filter (spec §2): a domain/URL blocklist, banned words in the URL, and the curated sources RW leaves out.

Runs before extraction and reads only `metadata["url"]`. Rules, first hit wins, one drop reason each:
`no_url`, `domain` (the registered domain is listed), `subdomain` (a longer host suffix is listed), `url` (the URL
or one of its directory prefixes is listed), `curated_source`, `hard_word`, `soft_words`, `strict_subword`.

The blocklist is hashed once into sorted uint64 arrays under a user cache folder (built in a temporary folder and
renamed into place, so concurrent workers never see a half-written list) and memory-mapped by every worker: the
4.6M domains cost no per-process load time and their pages are shared between processes.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

import numpy as np
import xxhash
from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.utils._import_utils import ASSETS_PATH
from datatrove.utils.logging import logger

from mdr.filters.drop import drop
from mdr.pipeline.recipe import OptionError, Options, option

# UT1 categories DCLM's RefinedWeb reconstruction blocks (DCLM setup.py::_create_refinedweb_banlists; spec §2).
RW_UT1_CATEGORIES = (
    "adult", "phishing", "dating", "gambling", "filehosting", "ddos", "agressif", "chat", "mixed_adult", "arjel",
)  # fmt: skip
# The Pile's sources, excluded by RW so they can be added back curated (DCLM refinedweb.yaml; spec §2).
CURATED_SOURCES = (
    "arxiv.org", "askubuntu.com", "stackoverflow.com", "stackapps.com", "stackexchange.com", "mathoverflow.net",
    "exporter.nih.gov", "ncbi.nlm.nih.gov", "github.com", "irclogs.ubuntu.com", "news.ycombinator.com",
    "courtlistener.com", "reddit.com", "statmt.org", "uspto.gov", "en.wikipedia.org",
)  # fmt: skip
# datatrove 0.10.1's UT1 aggregate: one merged `domains` (4,558,940) + `urls` (19,587) list, no per-category files.
# Spot checks: adult (pornhub.com), phishing (paypal look-alikes) and agressif (stormfront.org) are in; gambling
# (bet365.com), arjel (winamax.fr), filehosting (mediafire.com) and mainstream dating (meetic.com) are not.
DATATROVE_BLOCKLIST = Path(ASSETS_PATH) / "url_filterblacklistsv0_3_0.tar.gz"
DATATROVE_WORD_LISTS = {
    "strict": Path(ASSETS_PATH) / "banned_subwords.txt",  # DCLM "strict" -> datatrove banned_subwords (spec §2)
    "hard": Path(ASSETS_PATH) / "banned_words.txt",
    "soft": Path(ASSETS_PATH) / "soft_banned_words.txt",
}

_URL_WORD_SEPARATOR = re.compile(r"[^a-z0-9]+")
_STRICT_IGNORED = {"dash_dot": re.compile(r"[-.]"), "non_alphanumeric": _URL_WORD_SEPARATOR}
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")


@dataclass
class URLConfig(Options):
    # UT1 `blacklists/` folder (`<category>/domains`, `<category>/urls`); None: datatrove's shipped UT1 aggregate,
    # whose categories are merged and cannot be selected.
    blocklist_dir: str | None = option(None, path="dir")
    # read from blocklist_dir (DCLM; spec §2); each must be a folder of it
    blocklist_categories: tuple[str, ...] = option(RW_UT1_CATEGORIES, nonempty=True)
    # An empty entry is a mistake here and in curated_sources (an empty host suffix would match every host).
    extra_domains: tuple[str, ...] = option((), nonempty=True)
    extra_urls: tuple[str, ...] = option((), nonempty=True)
    # Word lists, one entry a line, '#' starts a comment; None: datatrove's shipped list (spec §2 mapping).
    strict_subwords_path: str | None = option(None, path="file")
    hard_words_path: str | None = option(None, path="file")
    soft_words_path: str | None = option(None, path="file")
    # drop at >= 2 distinct soft words (DCLM num_banned_substrs; spec §2); 0 would drop every document
    soft_word_threshold: int = option(2, range="[1, inf)")
    # Characters deleted from the URL before the strict substring match: DCLM deletes `-` and `.` (spec §2);
    # datatrove's URLFilter deletes every non-alphanumeric.
    strict_ignored: Literal["dash_dot", "non_alphanumeric"] = "dash_dot"
    # a host equal to or under one of these is dropped
    curated_sources: tuple[str, ...] = option(CURATED_SOURCES, nonempty=True)
    cache_dir: str | None = None  # hashed blocklists; None: $XDG_CACHE_HOME/mdr (default ~/.cache/mdr)

    def check_combination(self):
        if self.blocklist_dir is None or "://" in self.blocklist_dir:
            return
        folder = Path(self.blocklist_dir)  # checked now: the stage would find out in its first task
        for index, category in enumerate(self.blocklist_categories):
            if not (folder / category).is_dir():
                found = ", ".join(sorted(path.name for path in folder.iterdir() if path.is_dir()))
                raise OptionError(f"blocklist_categories[{index}]",
                                  f"names no UT1 category {category!r} in {folder} (found: {found})")

    @classmethod
    def fineweb(cls) -> URLConfig:
        """FineWeb's setting, datatrove `URLFilter()` semantics: no curated-source exclusion, every non-alphanumeric
        deleted before the subword match. FineWeb v1 used UT1 `adult` only, which needs `blocklist_dir`; without it
        the shipped merged list is used, as datatrove 0.10.1's fineweb example does."""
        return cls(blocklist_categories=("adult",), strict_ignored="non_alphanumeric", curated_sources=())


class URLStage(BaseFilter):
    """Drops documents whose `metadata["url"]` is blocklisted, carries banned words, or belongs to a curated source."""

    name = "url"

    def __init__(self, config: URLConfig = None, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.config = config or URLConfig()
        self.extra_domains = frozenset(d.strip().lower() for d in self.config.extra_domains)
        self.extra_urls = frozenset(_url_key(u) for u in self.config.extra_urls)
        self.curated_sources = frozenset(d.lower() for d in self.config.curated_sources)
        self.strict_ignored = _STRICT_IGNORED[self.config.strict_ignored]

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        url = doc.metadata.get("url")
        if not url:
            return drop(doc, "no_url", "metadata has no url")
        url = url.lower()
        blocklist = _load_blocklist(self.config.blocklist_dir, self.config.blocklist_categories, self.config.cache_dir)
        words = _load_word_lists(
            self.config.strict_subwords_path, self.config.hard_words_path, self.config.soft_words_path
        )

        hosts = _host_suffixes(url)  # registered domain first, then each longer suffix up to the full host
        listed = blocklist.listed_domains(hosts)
        for index, host in enumerate(hosts):
            if listed[index] or host in self.extra_domains:
                reason = "domain" if index == 0 else "subdomain"
                return drop(doc, reason, f"{reason} {host} is on the blocklist")
        url_keys = _url_prefixes(_url_key(url))
        listed = blocklist.listed_urls(url_keys)
        for index, key in enumerate(url_keys):
            if listed[index] or key in self.extra_urls:
                return drop(doc, "url", f"url {key} is on the blocklist")
        for host in hosts:
            if host in self.curated_sources:
                return drop(doc, "curated_source", f"curated_source {host} is excluded")

        url_words = set(_URL_WORD_SEPARATOR.split(url))
        hard = url_words & words.hard
        if hard:
            return drop(doc, "hard_word", f"hard_word {min(hard)!r} in url")
        soft = url_words & words.soft
        if len(soft) >= self.config.soft_word_threshold:
            return drop(
                doc, "soft_words", f"soft_words {sorted(soft)} {len(soft)} >= {self.config.soft_word_threshold}"
            )
        found = words.strict.search(self.strict_ignored.sub("", url)) if words.strict else None
        if found:
            return drop(doc, "strict_subword", f"strict_subword {found.group()!r} in url")
        return True


def _host_suffixes(url: str) -> list[str]:
    """`a.b.example.co.uk` -> [`example.co.uk`, `b.example.co.uk`, `a.b.example.co.uk`]."""
    parts = _tld_extractor()(url)
    if not (parts.suffix and parts.domain):  # IP address, localhost, a bare public suffix
        return [parts.domain] if parts.domain else []
    registered = parts.top_domain_under_public_suffix
    hosts = [registered]
    if parts.subdomain:
        labels = parts.subdomain.split(".")
        hosts.extend(".".join(labels[i:]) + "." + registered for i in range(len(labels) - 1, -1, -1))
    return hosts


def _url_key(url: str) -> str:
    """The form UT1 lists URLs in: lowercase, no scheme, no `www.`, no fragment, no trailing `/`."""
    key = _SCHEME.sub("", url.strip().lower()).split("#", 1)[0].rstrip("/")
    return key[4:] if key.startswith("www.") else key


def _url_prefixes(key: str) -> list[str]:
    """The URL and its directory prefixes (`host/a/b?q` -> `host/a`, `host/a/b`, `host/a/b?q`): UT1 lists a folder
    to block everything under it (squidGuard semantics)."""
    path = key.split("?", 1)[0]
    prefixes = [path[:index] for index, char in enumerate(path) if char == "/" and index > 0]
    prefixes.append(path)
    if key != path:
        prefixes.append(key)
    return prefixes


@functools.cache
def _tld_extractor():
    from tldextract import TLDExtract

    # The snapshot bundled with tldextract, no cache, no suffix-list download: nothing touches the network.
    return TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)


@dataclass(frozen=True)
class _WordLists:
    hard: frozenset[str]
    soft: frozenset[str]
    strict: re.Pattern | None  # matches any strict subword


@functools.cache
def _load_word_lists(strict_path: str | None, hard_path: str | None, soft_path: str | None) -> _WordLists:
    def read(path: str | None, kind: str) -> frozenset[str]:
        lines = Path(path or DATATROVE_WORD_LISTS[kind]).read_text().splitlines()
        # Normalized as datatrove does: lowercase, non-alphanumerics deleted ("2 girls 1 cup" -> "2girls1cup").
        words = (_URL_WORD_SEPARATOR.sub("", line.lower()) for line in lines if not line.strip().startswith("#"))
        return frozenset(words) - {""}

    strict = read(strict_path, "strict")
    return _WordLists(
        hard=read(hard_path, "hard"),
        soft=read(soft_path, "soft"),
        strict=re.compile(_trie_pattern(strict)) if strict else None,
    )


def _trie_pattern(words: Iterable[str]) -> str:
    """One regex matching any of `words`, shaped as their trie: ~7x faster than a flat alternation of 134 words."""
    trie: dict = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}  # a word ends here

    def pattern(node: dict) -> str:
        branches = [re.escape(char) + pattern(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return pattern(trie)


class _Blocklist:
    """Sorted 64-bit hashes of the listed domains and URLs; a collision needs ~2^64 / 4.6M lookups."""

    def __init__(self, folder: Path):
        # Plain ndarray views of the memory maps: numpy.memmap adds overhead to every small operation.
        self.domains = np.asarray(np.load(folder / "domains.npy", mmap_mode="r"))
        self.urls = np.asarray(np.load(folder / "urls.npy", mmap_mode="r"))

    def listed_domains(self, names: list[str]) -> np.ndarray:
        return _contains(self.domains, names)

    def listed_urls(self, keys: list[str]) -> np.ndarray:
        return _contains(self.urls, keys)


def _hash(items: Iterable[bytes]) -> np.ndarray:
    return np.fromiter(map(xxhash.xxh3_64_intdigest, items), dtype=np.uint64)


def _contains(sorted_hashes: np.ndarray, names: list[str]) -> np.ndarray:
    if not len(sorted_hashes) or not names:
        return np.zeros(len(names), dtype=bool)
    queries = _hash(name.encode() for name in names)
    positions = np.minimum(np.searchsorted(sorted_hashes, queries), len(sorted_hashes) - 1)
    return sorted_hashes[positions] == queries


@functools.cache
def _load_blocklist(blocklist_dir: str | None, categories: tuple[str, ...], cache_dir: str | None) -> _Blocklist:
    cache = Path(cache_dir or Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "mdr")
    if blocklist_dir is None:
        name = DATATROVE_BLOCKLIST.name.removesuffix(".tar.gz")
        source_key = f"datatrove-{name}-{DATATROVE_BLOCKLIST.stat().st_size}"
        logger.info("url: datatrove's shipped UT1 list merges its categories; set blocklist_dir to choose them")
        read_lists = _read_datatrove_blocklist
    else:
        files = _ut1_files(Path(blocklist_dir), categories)
        fingerprint = repr([(str(path), path.stat().st_size, path.stat().st_mtime_ns) for _, path in files])
        source_key = f"ut1-{xxhash.xxh3_64_hexdigest(fingerprint.encode())}"
        read_lists = functools.partial(_read_ut1_files, files)
    folder = cache / "url_blocklist" / source_key
    if not (folder / "urls.npy").is_file():
        _build_blocklist(folder, read_lists)
    return _Blocklist(folder)


def _ut1_files(folder: Path, categories: tuple[str, ...]) -> list[tuple[str, Path]]:
    if not folder.is_dir():
        raise FileNotFoundError(f"url: blocklist_dir {folder} is not a folder (expected UT1's `blacklists/`)")
    files = []
    for category in categories:
        if not (folder / category).is_dir():
            available = sorted(p.name for p in folder.iterdir() if p.is_dir())
            raise FileNotFoundError(f"url: no UT1 category {category!r} in {folder} (found: {', '.join(available)})")
        lists = [folder / category / kind for kind in ("domains", "urls")]
        files.extend((path.name, path) for path in lists if path.is_file())
    return files


def _read_datatrove_blocklist() -> Iterable[tuple[str, bytes]]:
    with tarfile.open(DATATROVE_BLOCKLIST, "r:gz") as tar:
        for member in tar:
            if member.isfile() and os.path.basename(member.name) in ("domains", "urls"):
                yield os.path.basename(member.name), tar.extractfile(member).read()


def _read_ut1_files(files: list[tuple[str, Path]]) -> Iterable[tuple[str, bytes]]:
    for kind, path in files:
        yield kind, path.read_bytes()


def _build_blocklist(folder: Path, read_lists) -> None:
    """Hashes the lists into `folder`, atomically: concurrent builders each write a temporary folder and the first
    rename wins; the others discard theirs."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        domains, urls = [], []
        for kind, data in read_lists():
            entries = [line for line in data.lower().split() if not line.startswith(b"#")]
            if kind == "domains":
                domains.append(_hash(entries))
            else:
                urls.append(_hash(_url_key(line.decode("utf-8", "replace")).encode() for line in entries))
        for name, parts in (("domains", domains), ("urls", urls)):
            hashes = np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.uint64)
            np.save(temporary / f"{name}.npy", hashes)
        try:
            os.rename(temporary, folder)
        except OSError:
            if not (folder / "urls.npy").is_file():
                raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
