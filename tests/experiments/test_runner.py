"""experiments/runner.py's tokenize_once, which `mdr ablate` and `mdr scale` tokenize each training corpus with:
token files made once and left untouched on a rerun, made again when the sweep's tokenizer has changed since (the
ablation refits it when its arms' documents change) or when they do not check out."""

from pathlib import Path

import numpy as np
import pytest

from mdr.experiments.runner import tokenize_once, write_texts
from mdr.layout import TokenLayout

pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[2]
TEXTS = sorted((REPO / "data_samples" / "texts").glob("*.txt"))


def written(folder: Path) -> dict[Path, tuple[int, int]]:
    return {path: (path.stat().st_mtime_ns, path.stat().st_ino) for path in folder.rglob("*") if path.is_file()}


def test_tokenized_once_untouched_on_a_rerun_and_remade_for_another_tokenizer(tmp_path):
    from mdr.train.tokenizer import load_tokenizer, train_tokenizer

    texts = [path.read_text() for path in TEXTS]
    shard = tmp_path / "train.parquet"
    write_texts(shard, texts)
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    train_tokenizer([str(shard)], 300, str(first))
    write_texts(tmp_path / "half.parquet", texts[: len(texts) // 2])
    train_tokenizer([str(tmp_path / "half.parquet")], 300, str(second))
    assert load_tokenizer(str(first)).sha256 != load_tokenizer(str(second)).sha256
    out = tmp_path / "tokens"
    layout = TokenLayout(out)

    def tokens(tokenizer_path: Path) -> list[int]:  # the shard's documents, each followed by end-of-document
        tokenizer = load_tokenizer(str(tokenizer_path))
        return [i for ids in tokenizer.encode_batch(texts) for i in [*ids, tokenizer.eos_id]]

    manifest = tokenize_once([shard], first, out, progress=False)
    [entry] = manifest["shards"]
    assert np.fromfile(layout.tokens(entry["name"]), dtype=manifest["dtype"]).tolist() == tokens(first)
    assert manifest["tokens"] == len(tokens(first))
    before = written(out)
    assert tokenize_once([shard], first, out, progress=False) == manifest and written(out) == before
    # the sweep's tokenizer refitted: its token files are made again with it, not refused as another tokenizer's
    remade = tokenize_once([shard], second, out, progress=False)
    assert remade["tokenizer"]["sha256"] == load_tokenizer(str(second)).sha256
    assert np.fromfile(layout.tokens(entry["name"]), dtype=remade["dtype"]).tolist() == tokens(second)
    # a token file cut short is made again
    path = layout.tokens(entry["name"])
    path.write_bytes(path.read_bytes()[:-2])
    assert tokenize_once([shard], second, out, progress=False) == remade
    assert np.fromfile(path, dtype=remade["dtype"]).tolist() == tokens(second)
