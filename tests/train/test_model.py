"""train/model.py: shapes, causality, tying, GPT-2 init and the parameter/FLOP counts."""

import pytest
import torch

from mdr.train.model import GPT, PRESETS, GPTConfig, config_for, padded_vocab_size, shape_counts

SMALL = GPTConfig(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=32)


def test_logits_shape_and_causality():
    torch.manual_seed(0)
    model = GPT(SMALL).eval()
    idx = torch.randint(0, 64, (2, 10))
    logits = model(idx)
    assert logits.shape == (2, 10, 64)
    changed = idx.clone()
    changed[:, 6] = (changed[:, 6] + 1) % 64  # a later token cannot change earlier predictions
    after = model(changed)
    assert torch.allclose(logits[:, :6], after[:, :6], atol=1e-6)
    assert not torch.allclose(logits[:, 6:], after[:, 6:], atol=1e-6)


def test_context_longer_than_block_size_is_refused():
    with pytest.raises(ValueError, match="block_size"):
        GPT(SMALL)(torch.zeros(1, 17, dtype=torch.long))


def test_tied_embedding_and_depth_scaled_init():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=512, block_size=16, n_layer=8, n_head=4, n_embd=256))
    assert model.lm_head.weight is model.transformer.wte.weight
    residual = model.transformer.h[0].mlp.c_proj.weight.std().item()
    other = model.transformer.h[0].mlp.c_fc.weight.std().item()
    assert other == pytest.approx(0.02, rel=0.05)
    assert residual == pytest.approx(0.02 / (2 * 8) ** 0.5, rel=0.05)


def test_gpt2_124m_counts():
    with torch.device("meta"):
        model = GPT(PRESETS["gpt2-124m"])
    # nanoGPT prints "number of parameters: 123.69M" for this model (position embedding not counted):
    # wte 50304·768 = 38,633,472; per block ln 1,536 + qkv 1,771,776 + proj 590,592 + ln 1,536 + fc 2,362,368
    # + proj 2,360,064 = 7,087,872, times 12 = 85,054,464; ln_f 1,536. Total 123,689,472.
    assert model.num_params() == 123_689_472
    assert model.num_params(non_embedding=False) == 123_689_472 + 1024 * 768
    # 6N + 12·L·H·Q·T = 6·123,689,472 + 12·12·12·64·1024
    assert model.flops_per_token() == 6 * 123_689_472 + 12 * 12 * 12 * 64 * 1024


def test_shape_counts_are_kaplans_n_without_building_the_weights():
    """GPT-2 small has 85M non-embedding parameters, as Kaplan et al. 2020 count N (the 123.69M above less the tied
    token embedding); shape_counts builds on the meta device, so a gpt2-124m count allocates nothing."""
    counts = shape_counts(PRESETS["gpt2-124m"])
    assert counts["n"] == 85_054_464 + 1_536 == 123_689_472 - 50304 * 768
    assert counts["n_total"] == 123_689_472 + 1024 * 768
    assert counts["flops_per_token"] == 6 * 123_689_472 + 12 * 12 * 12 * 64 * 1024
    shaped = config_for("tiny", vocab_size=1000, n_layer=2, n_head=2, n_embd=32)
    assert (shaped.n_layer, shaped.n_head, shaped.n_embd, shaped.block_size) == (2, 2, 32, PRESETS["tiny"].block_size)
    model = GPT(shaped)
    assert shape_counts(shaped)["n"] == sum(p.numel() for p in model.parameters()) - 1024 * 32 - 128 * 32


def test_config_for_pads_the_vocabulary():
    assert padded_vocab_size(50257) == 50304 and padded_vocab_size(64) == 64
    config = config_for("tiny", vocab_size=1000, block_size=64)
    assert (config.vocab_size, config.block_size, config.n_layer) == (1024, 64, PRESETS["tiny"].n_layer)
    with pytest.raises(KeyError):
        config_for("huge", 10)
