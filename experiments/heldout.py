"""The documents of `mdr ablate`'s arms (issue 12.2): which are held out, which each arm trains on, and the
`--eval` sets.

Held out: a document whose WARC record id hashes into the lowest `fraction` of the 64-bit range (`is_heldout`), so
the choice depends on the id alone, not on the arm, the order, the seed or the other documents. The held-out sets
come from the first arm (`heldout-first`: all its held-out documents) and the last (`heldout-last`: those whose id
survives to the last arm, in the last arm's text, so that it samples the curated corpus). Every held-out id is
removed from every arm's training documents.

Decontamination: a training document that is a near-duplicate of a reference document (held-out or `--eval`) is
removed from every arm, by id, and counted. Near-duplicate: Jaccard ≥ 0.8 of the word 5-gram sets as
dedup/minhash.py builds them (datatrove's normalisation: lowercase, digits → 0, punctuation, whitespace). MinHash
LSH proposes the pairs (`DECONTAMINATION`) and the exact Jaccard of the two shingle sets decides, so that nothing
below 0.8 is removed. A text of fewer than 5 words is a single shingle, its whole normalised text (as
`MinhashSignature.shingles` makes it): it is the near-duplicate only of a text that is equal to it once normalised
(Jaccard 1, else 0); a text without words matches nothing.

`--eval` sets (`load_eval_set`): a Parquet file with a `text` column, a JSONL file (`.jsonl`, `.jsonl.gz`) of
objects with a "text" string, or a plain text file (`.txt`, UTF-8), which is one document: a blank line cannot
separate documents, since it separates a document's paragraphs. A directory means every such file in it, at any
depth (an `mdr run` output directory: its data/).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import xxhash

from mdr.dedup.minhash import MinhashConfig, MinhashSignature
from mdr.errors import UsageError
from mdr.layout import documents_folder
from mdr.train.tokenizer import DataError, one_line, open_text_parquet, read_texts  # loads no torch

Doc = tuple[str, str]  # (WARC record id, text)

# A seed of its own: the ablation's held-out documents are not those of any other hash split in mdr (train/data.py's
# in_val_split hashes texts with seed 0). Changing it changes every ablation's held-out sets.
HELDOUT_HASH_SEED = 12  # issue 12
# Issue 12: "near-duplicate (MinHash, word 5-grams, Jaccard ≥ 0.8)"; exact, so that the comparison is in integers.
NEAR_DUPLICATE = Fraction(4, 5)
# Candidate pairs only (each is confirmed by exact Jaccard), so recall is what counts: 50 bands × 5 rows miss a pair
# at J = 0.8 with probability (1 - 0.8^5)^50 ≈ 2e-9 (`detection_probability`), at 250 hashes per document where
# dedup's 450 × 20 take 9,000. Shingling as minhash dedup: word 5-grams of the normalised text.
DECONTAMINATION = MinhashConfig(num_bands=50, rows_per_band=5, n_grams=5, normalize=True)
_KEYS_BATCH = 1024  # texts signed at a time: bounds the signatures' memory (1 KB per text)


def is_heldout(record_id: str, fraction: float) -> bool:
    """Whether the document with this WARC record id is held out: the 64-bit xxhash of the id (HELDOUT_HASH_SEED)
    falls in the lowest `fraction` of the range."""
    return xxhash.xxh64_intdigest(record_id.encode("utf-8"), seed=HELDOUT_HASH_SEED) < fraction * 2.0**64


@dataclass
class HeldOut:
    first: list[Doc]  # heldout-first: the first arm's held-out documents
    last: list[Doc]  # heldout-last: those of them whose id is in the last arm, in the last arm's text
    training: dict[str, list[Doc]]  # each arm's documents but the held-out ones, in its order
    removed: dict[str, int]  # per arm, the held-out documents taken out of its training documents


def split_heldout(arms: Mapping[str, Iterable[Doc]], fraction: float) -> HeldOut:
    """The held-out sets and the training documents of `arms` (name → documents, in arm order: the first is the
    stage nearest the input). The hash decides in every arm, so that no arm trains on a held-out id."""
    if not 0 < fraction < 1:
        raise UsageError(f"the held-out fraction must be between 0 and 1 (exclusive), not {fraction}")
    names = list(arms)
    if not names:
        raise ValueError("no arms")
    training, heldout = {}, {}
    for name in names:
        training[name], heldout[name] = [], []
        for doc in arms[name]:
            (heldout if is_heldout(doc[0], fraction) else training)[name].append(doc)
    first = heldout[names[0]]
    if not first:
        raise UsageError(f"no document of the first arm ({names[0]}, {len(training[names[0]])} documents) is held "
                         f"out at fraction {fraction}: give more documents or a larger fraction")
    first_ids = {doc_id for doc_id, _ in first}
    last = [doc for doc in heldout[names[-1]] if doc[0] in first_ids]
    return HeldOut(first=first, last=last, training=training,
                   removed={name: len(docs) for name, docs in heldout.items()})


@dataclass
class Decontamination:
    training: dict[str, list[Doc]]  # each arm without the removed documents
    removed: dict[str, set[str]]  # removed training id → the reference sets it near-duplicates a document of
    per_arm: dict[str, int]  # documents removed from each arm
    per_reference: dict[str, int]  # per reference set, the removed ids that near-duplicate one of its documents

    def summary(self) -> dict:
        """The counts, for ablation.json."""
        return {"near_duplicate": f"Jaccard >= {float(NEAR_DUPLICATE)} of word {DECONTAMINATION.n_grams}-grams",
                "removed_documents": len(self.removed), "per_arm": self.per_arm, "per_reference": self.per_reference}


def decontaminate(training: Mapping[str, Sequence[Doc]], references: Mapping[str, Sequence[str]]) -> Decontamination:
    """Removes from every arm of `training` each id whose text, in any arm, near-duplicates a text of `references`
    (set name → texts: the held-out sets and the --eval sets)."""
    index = _ReferenceIndex(MinhashSignature(DECONTAMINATION), references)
    matched: dict[str, frozenset[str]] = {}  # text → the sets it near-duplicates; arms share most of their texts
    removed: dict[str, set[str]] = {}
    for docs in training.values():
        unseen = list(dict.fromkeys(text for _, text in docs if text not in matched))
        matched.update(zip(unseen, index.matches(unseen)))
        for doc_id, text in docs:
            if matched[text]:
                removed.setdefault(doc_id, set()).update(matched[text])
    kept = {arm: [doc for doc in docs if doc[0] not in removed] for arm, docs in training.items()}
    return Decontamination(
        training=kept, removed=removed,
        per_arm={arm: len(docs) - len(kept[arm]) for arm, docs in training.items()},
        per_reference={name: sum(name in sets for sets in removed.values()) for name in references})


class _ReferenceIndex:
    """The reference documents' band keys (LSH buckets) and shingle sets."""

    def __init__(self, signer: MinhashSignature, references: Mapping[str, Sequence[str]]):
        self.signer = signer
        self.documents: list[tuple[str, frozenset[bytes]]] = []  # (set name, shingles)
        self.buckets: list[dict[int, list[int]]] = [{} for _ in range(signer.config.num_bands)]
        for name, texts in references.items():
            for text, keys in self._keys(list(texts)):
                number = len(self.documents)
                self.documents.append((name, frozenset(signer.shingles(text))))
                for bucket, key in zip(self.buckets, keys):
                    bucket.setdefault(key, []).append(number)

    def _keys(self, texts: list[str]):
        """(text, band keys) of each text that has a shingle."""
        for start in range(0, len(texts), _KEYS_BATCH):
            batch = texts[start : start + _KEYS_BATCH]
            for text, keys in zip(batch, self.signer.document_keys(batch).tolist()):
                if keys[0]:  # 0: no word, no signature
                    yield text, keys

    def matches(self, texts: list[str]) -> list[frozenset[str]]:
        """Per text, the names of the sets holding a near-duplicate of it."""
        found = {}
        for text, keys in self._keys(texts):
            candidates = set()
            for bucket, key in zip(self.buckets, keys):
                candidates.update(bucket.get(key, ()))
            if candidates:
                shingles = set(self.signer.shingles(text))
                found[text] = frozenset(self.documents[c][0] for c in candidates
                                        if _near_duplicate(shingles, self.documents[c][1]))
        return [found.get(text, frozenset()) for text in texts]


def _near_duplicate(a: set, b: frozenset) -> bool:
    shared = len(a & b)
    union = len(a) + len(b) - shared
    return shared * NEAR_DUPLICATE.denominator >= NEAR_DUPLICATE.numerator * union


# ---------------------------------------------------------------------------------------------------------------
# --eval sets

EVAL_FORMATS = ("Parquet with a 'text' column (.parquet), JSONL with a \"text\" field (.jsonl, .jsonl.gz), "
                "plain text (.txt)")


def load_eval_set(path: str | Path) -> list[str]:
    """The texts of an --eval set (a file or a directory of them, module docstring), in file order and then in the
    file's order. Documents without text (null, empty or only whitespace) are left out: they hold no byte to score.
    A missing, unreadable or malformed file, or a set without any text, is a one-line UsageError naming it."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in documents_folder(path).rglob("*")
                       if _reader(p) and p.is_file() and not p.name.startswith("."))
        if not files:
            raise UsageError(f"{path} holds no evaluation file: {EVAL_FORMATS}")
    elif path.is_file():
        if not _reader(path):
            raise UsageError(f"{path}: not an evaluation file; give {EVAL_FORMATS}, or a directory of them")
        files = [path]
    else:
        raise UsageError(f"{path}: no such file or directory")
    texts = []
    for file in files:
        try:
            texts.extend(text for text in _reader(file)(file) if text and not text.isspace())
        except UnicodeDecodeError as error:
            raise UsageError(f"{file} is not UTF-8 text (byte {error.start}: {error.reason})") from None
        except (OSError, EOFError) as error:  # gzip: BadGzipFile (an OSError), EOFError when truncated
            raise UsageError(f"{file} cannot be read: {one_line(error)}") from None
    if not texts:
        raise UsageError(f"{path} holds no document with text")
    return texts


def _reader(path: Path):
    name = path.name.lower()
    if name.endswith(".parquet"):
        return _parquet_texts
    if name.endswith((".jsonl", ".jsonl.gz")):
        return _jsonl_texts
    if name.endswith(".txt"):
        return lambda file: [file.read_text(encoding="utf-8")]
    return None


def _parquet_texts(path: Path) -> list:
    parquet = open_text_parquet(str(path))  # UsageError: not Parquet, no text column, not strings
    try:
        return [text for group in range(parquet.metadata.num_row_groups)
                for text in read_texts(parquet, str(path), group)]
    except DataError as error:  # a corrupt row group: before anything trains, so the user's to fix
        raise UsageError(str(error)) from None


def _jsonl_texts(path: Path) -> list:
    texts = []
    with (gzip.open(path, "rt", encoding="utf-8") if path.name.lower().endswith(".gz")
          else path.open(encoding="utf-8")) as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise UsageError(f"{path}: line {number} is not JSON ({error.msg})") from None
            if not isinstance(row, dict) or "text" not in row or not isinstance(row["text"], (str, type(None))):
                raise UsageError(f'{path}: line {number} is not an object with a "text" string')
            texts.append(row["text"])
    return texts
