"""train/export.py: the exported directory loads in transformers as GPT2LMHeadModel with our logits and tokens."""

from __future__ import annotations

import pytest
import torch

from mdr.train.export import export_hf
from mdr.train.tokenizer import load_tokenizer
from mdr.train.checkpointing import load_model
from tests.train.runs import tiny_run

transformers = pytest.importorskip("transformers", reason="export needs the `export` extra (transformers)")


def test_exported_model_gives_our_logits(tmp_path):
    run = tiny_run()
    out = export_hf(run, tmp_path / "hf")
    hf_model = transformers.GPT2LMHeadModel.from_pretrained(out).eval()
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    ours, _ = load_model(run)
    tokenizer = load_tokenizer(str(run / "tokenizer.json"))

    text = "First Citizen:\nBefore we proceed any further, hear me speak — naïve 東京."
    ids = tokenizer.encode(text)
    assert hf_tokenizer.encode(text) == ids and hf_tokenizer.decode(ids) == text
    assert hf_tokenizer.eos_token_id == tokenizer.eos_id
    batch = torch.tensor([ids[:32], ids[-32:]])
    with torch.no_grad():
        expected, got = ours(batch), hf_model(batch).logits
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert hf_model.config.n_positions == ours.config.block_size
    # tied like ours: one matrix for the embedding and the output head
    assert hf_model.lm_head.weight.data_ptr() == hf_model.transformer.wte.weight.data_ptr()


def test_hf_naming_a_file_is_one_line(tmp_path, capsys):
    from mdr.cli import main

    (tmp_path / "file").write_text("")
    assert main(["export", str(tiny_run()), "--hf", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a file" in err
