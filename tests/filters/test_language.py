from collections import Counter

import numpy as np
import pytest

from mdr.filters import language
from mdr.filters.language import LanguageConfig, LanguageStage, default_model_path
from tests.filters.texts import reloaded, run, shared_file


class FixedModel:
    """Answers every prediction with one label and score, to place a document exactly at the threshold."""

    def __init__(self, label: str, score: float):
        self.label, self.score = label, score

    def predict(self, text, k=1):
        assert "\n" not in text
        return (self.label,), (self.score,)


def with_model(monkeypatch, label: str, score: float):
    monkeypatch.setattr(language, "_load_model", lambda path: FixedModel(label, score))


def test_defaults():
    config = LanguageConfig()
    assert (config.languages, config.threshold, config.model_path) == (("en",), 0.65, None)
    assert default_model_path().name == "lid.176.ftz" and default_model_path().is_file()


def test_score_boundary_is_inclusive(monkeypatch):
    with_model(monkeypatch, "__label__en", 0.65)
    result, doc = run(LanguageStage(), "text")
    assert result is True and doc.metadata["language"] == "en" and doc.metadata["language_score"] == 0.65
    with_model(monkeypatch, "__label__en", 0.6499999)
    result, doc = run(LanguageStage(), "text")
    assert result == "low_score" and doc.metadata["drop_detail"] == "language_score 0.6499999 < 0.65"


def test_wrong_language_comes_before_low_score(monkeypatch):
    with_model(monkeypatch, "__label__de", 0.2)
    result, doc = run(LanguageStage(), "text")
    assert result == "language" and doc.metadata["drop_detail"] == "language de (0.2) not in ['en']"
    assert doc.metadata["language"] == "de"


def test_any_language_when_languages_is_none(monkeypatch):
    with_model(monkeypatch, "__label__de", 0.9)
    assert run(LanguageStage(LanguageConfig(languages=None)), "text")[0] is True
    with_model(monkeypatch, "__label__de", 0.5)
    assert run(LanguageStage(LanguageConfig(languages=None)), "text")[0] == "low_score"


@pytest.mark.parametrize("languages", [("en",), ("eng",), ("eng_Latn",)])
def test_glotlid_labels_match_iso_639_1_and_3(monkeypatch, languages):
    with_model(monkeypatch, "__label__eng_Latn", 0.9)
    config = LanguageConfig()
    config.languages = languages  # codes of the GlotLID model stood in for: the config checks them against lid.176
    result, doc = run(LanguageStage(config), "text")
    assert result is True
    assert (doc.metadata["language"], doc.metadata["language_script"]) == ("en", "Latn")
    with_model(monkeypatch, "__label__cmn_Hani", 0.9)
    result, doc = run(LanguageStage(config), "text")
    assert result == "language" and doc.metadata["language"] == "zh"


def test_model_with_wrong_return_types_is_refused(monkeypatch, tmp_path):
    """The official `fasttext` answers with numpy arrays: loading must fail loudly, not mislabel documents."""
    import fasttext

    class NumpyModel:
        def predict(self, text, k=1):
            return np.array(["__label__en"]), np.array([0.9], dtype=np.float32)

    monkeypatch.setattr(fasttext, "load_model", lambda path: NumpyModel())
    model_file = tmp_path / "model.bin"
    model_file.write_bytes(b"")
    with pytest.raises(RuntimeError, match="fasttext-predict"):
        language._load_model.__wrapped__(str(model_file))


def test_missing_model_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no fastText model"):
        language._load_model.__wrapped__(str(tmp_path / "absent.bin"))


def test_real_model_on_multiline_text():
    result, doc = run(LanguageStage(), "The weather was fine.\nWe walked to the harbour\n\nand back again.")
    assert result is True and doc.metadata["language"] == "en" and doc.metadata["language_score"] > 0.65


def test_accuracy_on_real_sentences():
    stage = LanguageStage()
    outcomes = {}
    for code in ("en", "de", "fr"):
        lines = shared_file(f"langid/lingua/language-testdata/sentences/{code}.txt").read_text().splitlines()
        outcomes[code] = Counter(run(stage, line)[0] for line in lines)
    assert outcomes["en"][True] >= 0.95 * sum(outcomes["en"].values())
    for code in ("de", "fr"):
        assert outcomes[code][True] == 0
        assert outcomes[code]["language"] >= 0.98 * sum(outcomes[code].values())


def test_pickles_and_works_after_unpickling():
    stage = LanguageStage()
    run(stage, "The model is loaded now.")
    result, doc = run(reloaded(stage), "Der Hund läuft schnell über die Straße.")
    assert result == "language" and doc.metadata["language"] == "de"
