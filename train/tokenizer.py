"""Byte-level BPE tokenizer (GPT-2 style) trained on the `text` column of Parquet shards, and the shard finder.

    mdr tokenizer train --data SHARDS... --vocab-size N --out PATH [--max-docs N]

Byte-level: every string encodes, whatever its script, and decodes back to itself. One special token,
`<|endoftext|>`, ends each document in the training stream. Its literal spelling inside a document is encoded as
ordinary text (`encode_special_tokens`), so a web page that happens to contain it does not forge a document end.
Training is offline and deterministic: the same shards and vocabulary size give the same file, byte for byte.
"""

from __future__ import annotations

import glob
import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from mdr.atomic import write_atomically
from mdr.errors import UsageError
from mdr.layout import DATA_DIR, RUN_FILE, TrainLayout, documents_folder

EOS_TOKEN = "<|endoftext|>"
BYTE_ALPHABET_SIZE = 256  # byte-level BPE starts from one token per byte
_GLOB_CHARS = set("*?[")
_TEXT_BATCH_ROWS = 1000  # rows handed to the BPE trainer at a time


def _is_url(item: str) -> bool:
    return "://" in item


def _fsspec_files(url: str) -> list[str]:
    import fsspec.core

    fs, path = fsspec.core.url_to_fs(url)
    if _GLOB_CHARS & set(path):
        found = fs.glob(path)
    elif path.endswith(".parquet"):  # a file: HTTP servers cannot be listed, so a file URL is taken as is
        found = [path] if fs.exists(path) else []
    elif fs.isdir(path):
        base = path.rstrip("/")
        data = f"{base}/{DATA_DIR}"
        if fs.exists(f"{base}/{RUN_FILE}") and fs.isdir(data):  # `mdr run` OUT: its kept documents only
            base = data
        found = [p for p in fs.find(base) if p.endswith(".parquet")]
    else:
        found = []
    return [fs.unstrip_protocol(p) if not _is_url(p) else p for p in found]


def _local_files(item: str) -> list[str]:
    if _GLOB_CHARS & set(item):
        return [p for p in glob.glob(item, recursive=True) if p.endswith(".parquet") and os.path.isfile(p)]
    path = Path(item)
    if path.is_dir():
        return [str(p) for p in documents_folder(path).rglob("*.parquet") if p.is_file() and not p.name.startswith(".")]
    return [str(path)] if path.is_file() else []


def resolve_parquet_files(data: list[str] | str | os.PathLike) -> list[str]:
    """Parquet files named by paths, directories (an `mdr run` OUT directory means its data/), globs or fsspec URLs.

    Directories are searched recursively for *.parquet. An HTTP(S) URL must name a file (a server cannot be listed);
    object stores (s3://, gs://, hf://...) take directories and globs too. Returns a sorted list without duplicates;
    raises UsageError (one line) when an item names no Parquet file.
    """
    items = [os.fspath(item) for item in ([data] if isinstance(data, (str, os.PathLike)) else data)]
    if not items:
        raise UsageError("no data given: pass --data with Parquet files, directories, globs or URLs")
    files: set[str] = set()
    for item in items:
        found = _fsspec_files(item) if _is_url(item) else _local_files(item)
        if not found:
            raise UsageError(f"no Parquet files found at {item!r}: give Parquet files, a directory of them, a glob, "
                              "an fsspec URL or an `mdr run` output directory")
        files.update(found)
    return sorted(files)


class DataError(RuntimeError):
    """Input data found unreadable while running (a corrupt row group behind a valid footer, a file gone): the run
    fails with this one-line reason (exit code 1), unlike what is checked before anything runs (UsageError)."""


def one_line(error: BaseException) -> str:
    """An exception's message as one printable line: pyarrow's and torch's span several lines and may quote the
    bytes they choked on."""
    text = " ".join(str(error).split()) or type(error).__name__
    return "".join(c if c.isprintable() else "\ufffd" for c in text)


def open_parquet(path: str):
    """A pyarrow ParquetFile for a local path or an fsspec URL (read with range requests, not downloaded whole).
    A file that is not Parquet (empty, truncated, garbage) or cannot be opened is a one-line UsageError."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if not _is_url(path) or path.startswith("file://"):
            return pq.ParquetFile(path.removeprefix("file://"))
        import fsspec

        return pq.ParquetFile(fsspec.open(path, "rb").open())
    except (OSError, pa.ArrowException) as error:  # ArrowInvalid: "Parquet magic bytes not found in footer", ...
        raise UsageError(f"{path} is not a readable Parquet file: {one_line(error)}") from None


def open_text_parquet(path: str, text_column: str = "text"):
    """open_parquet, after checking that the file has the text column and that it holds strings (else a one-line
    UsageError)."""
    import pyarrow as pa

    parquet = open_parquet(path)
    schema = parquet.schema_arrow
    if text_column not in schema.names:
        raise UsageError(f"{path} has no {text_column!r} column (columns: {', '.join(schema.names)})")
    kind = schema.field(text_column).type
    if pa.types.is_dictionary(kind):  # a categorical column reads back as its values
        kind = kind.value_type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise UsageError(f"{path}: column {text_column!r} holds {kind}, not text (strings)")
    return parquet


def read_texts(parquet, path: str, row_group: int, text_column: str = "text") -> list:
    """The text column of one row group, as Python strings (None for nulls); a row group that cannot be read or
    decoded is a DataError naming the file and row group."""
    import pyarrow as pa

    try:
        return parquet.read_row_group(row_group, columns=[text_column]).column(0).to_pylist()
    except (OSError, pa.ArrowException) as error:  # OSError: "Couldn't deserialize thrift", "Corrupt snappy ..."
        raise DataError(f"{path}: row group {row_group} is unreadable: {one_line(error)}") from None


def _batches(parquet, path: str, text_column: str):
    """parquet.iter_batches of the text column; a page that cannot be read or decoded is a DataError."""
    import pyarrow as pa

    batches = parquet.iter_batches(batch_size=_TEXT_BATCH_ROWS, columns=[text_column])
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (OSError, pa.ArrowException) as error:
            raise DataError(f"{path} is unreadable: {one_line(error)}") from None
        yield batch


def iter_texts(files: list[str], text_column: str = "text", max_docs: int | None = None) -> Iterator[list[str]]:
    """Batches of non-null texts from the files in order, row group by row group, at most `max_docs` in all."""
    remaining = max_docs if max_docs is not None else -1
    for path in files:
        parquet = open_text_parquet(path, text_column)
        for batch in _batches(parquet, path, text_column):
            texts = [t for t in batch.column(0).to_pylist() if t is not None]
            if remaining >= 0:
                texts = texts[:remaining]
                remaining -= len(texts)
            if texts:
                yield texts
            if remaining == 0:
                return


def train_tokenizer(files: list[str], vocab_size: int, out: str, text_column: str = "text",
                    max_docs: int | None = None) -> str:
    """Trains a byte-level BPE with `<|endoftext|>` on the shards' text; writes tokenizer.json atomically.

    `files` may be anything resolve_parquet_files takes. `out` is the file to write, or a directory (existing, or
    written with a trailing slash) to write tokenizer.json into. Returns the path written.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    minimum = BYTE_ALPHABET_SIZE + 1
    if vocab_size < minimum:
        raise UsageError(f"--vocab-size must be at least {minimum} (256 bytes + {EOS_TOKEN}), got {vocab_size}")
    if max_docs is not None and max_docs < 1:
        raise UsageError(f"--max-docs must be at least 1, got {max_docs}")
    paths = resolve_parquet_files(files)
    if os.path.isdir(out) or out.endswith(("/", os.sep)):
        out = os.path.join(out, TrainLayout.TOKENIZER)

    tokenizer = Tokenizer(models.BPE())
    # GPT-2's byte-level scheme: no prefix space, so decode(encode(s)) == s for every s.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes, seen in the data or not
        show_progress=False,
    )
    documents = 0

    def counted() -> Iterator[list[str]]:
        nonlocal documents
        for texts in iter_texts(paths, text_column, max_docs):
            documents += len(texts)
            yield texts

    tokenizer.train_from_iterator(counted(), trainer=trainer)
    if documents == 0:
        raise UsageError(f"no text to train on: the {text_column!r} column of {len(paths)} file(s) is empty")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    write_atomically(out, tokenizer.to_str(pretty=True), durable=True)  # training it can take hours
    return out


class MdrTokenizer:
    """A trained tokenizer: encode/decode, the end-of-document id, and the file's hash for the run manifest."""

    def __init__(self, path: str):
        from tokenizers import Tokenizer

        self.path = str(path)
        with open(self.path, "rb") as handle:
            raw = handle.read()
        self.sha256 = hashlib.sha256(raw).hexdigest()
        try:
            self._tokenizer = Tokenizer.from_str(raw.decode("utf-8"))
        except Exception as error:  # noqa: BLE001 -- the Rust side raises a bare Exception ("expected value at ...")
            raise UsageError(f"{self.path} is not a tokenizer file ({one_line(error)}): train one with "
                              "`mdr tokenizer train`") from None
        self._tokenizer.encode_special_tokens = True  # a literal "<|endoftext|>" in a document is text
        eos_id = self._tokenizer.token_to_id(EOS_TOKEN)
        if eos_id is None:
            raise UsageError(f"{self.path} has no {EOS_TOKEN} token: train it with `mdr tokenizer train`")
        self.eos_id: int = eos_id
        self.vocab_size: int = self._tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Encodes in parallel (the Rust batch API, without the offsets we never use)."""
        return [encoding.ids for encoding in self._tokenizer.encode_batch_fast(texts, add_special_tokens=False)]

    def decode(self, ids: list[int]) -> str:
        return self._tokenizer.decode(list(ids), skip_special_tokens=False)

    def __repr__(self) -> str:
        return f"MdrTokenizer({self.path!r}, vocab_size={self.vocab_size}, eos_id={self.eos_id})"


def load_tokenizer(path: str) -> MdrTokenizer:
    """Loads tokenizer.json (a file, or a directory holding one)."""
    if os.path.isdir(path):
        path = os.path.join(path, TrainLayout.TOKENIZER)
    if not os.path.isfile(path):
        raise UsageError(f"tokenizer {path!r} not found: train one with `mdr tokenizer train`")
    return MdrTokenizer(path)


def register(verbs) -> None:
    """Adds `mdr tokenizer train` to the mdr CLI."""
    tokenizer = verbs.add_parser("tokenizer", help="train the byte-level BPE tokenizer")
    actions = tokenizer.add_subparsers(dest="tokenizer_action", required=True)
    train = actions.add_parser("train", help="train a byte-level BPE on Parquet shards' text")
    train.add_argument("--data", nargs="+", required=True, metavar="SHARDS",
                       help="Parquet files, directories, globs, fsspec URLs or `mdr run` output directories")
    train.add_argument("--vocab-size", type=int, required=True, metavar="N",
                       help="vocabulary size, <|endoftext|> included")
    train.add_argument("--out", required=True, metavar="PATH", help="tokenizer.json to write (or a directory)")
    train.add_argument("--max-docs", type=int, metavar="N", help="train on the first N documents only")
    train.add_argument("--text-column", default="text")
    train.set_defaults(handler=cmd_tokenizer_train)


def cmd_tokenizer_train(args) -> int:
    try:
        path = train_tokenizer(args.data, args.vocab_size, args.out, text_column=args.text_column,
                               max_docs=args.max_docs)
    except DataError as error:  # a row group unreadable behind a valid footer: a failure while running, exit code 1
        print(f"mdr: error: {error}", file=sys.stderr)
        return 1
    tokenizer = load_tokenizer(path)
    short = (f" (asked for {args.vocab_size:,}: the text supports no more merges)"
             if tokenizer.vocab_size < args.vocab_size else "")
    print(f"mdr: tokenizer with {tokenizer.vocab_size:,} tokens{short} (eos id {tokenizer.eos_id}) -> {path} "
          f"(sha256 {tokenizer.sha256[:12]})", file=sys.stderr)
    print(path)
    return 0
