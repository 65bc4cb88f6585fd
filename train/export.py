"""Export a run's model as a Hugging Face `transformers` GPT-2 (GPT2LMHeadModel) with its tokenizer.

Our module and parameter names are GPT-2's, so the mapping is one to one except that Hugging Face's GPT-2 keeps its
projections in Conv1D layers, whose weight is the transpose of nn.Linear's: (in_features, out_features).
Needs the `export` extra (`pip install 'mdr[export]'`).
"""

from __future__ import annotations

import os
from pathlib import Path

from mdr.errors import UsageError
from mdr.layout import TrainLayout
from mdr.train.checkpointing import load_model
from mdr.train.model import GPT
from mdr.train.tokenizer import EOS_TOKEN

# Parameters stored in Hugging Face's GPT-2 as Conv1D weights, transposed relative to nn.Linear.
CONV1D_WEIGHTS = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def hf_config(model: GPT, eos_id: int):
    from transformers import GPT2Config

    c = model.config
    return GPT2Config(
        vocab_size=c.vocab_size, n_positions=c.block_size, n_embd=c.n_embd, n_layer=c.n_layer, n_head=c.n_head,
        n_inner=4 * c.n_embd, activation_function="gelu_new", layer_norm_epsilon=c.layer_norm_eps,
        resid_pdrop=c.dropout, embd_pdrop=c.dropout, attn_pdrop=c.dropout,
        bos_token_id=eos_id, eos_token_id=eos_id, tie_word_embeddings=True,
    )


def hf_state_dict(model: GPT) -> dict:
    """Our state dict under GPT2LMHeadModel's names and layouts."""
    return {name: (tensor.t().contiguous() if name.endswith(CONV1D_WEIGHTS) else tensor)
            for name, tensor in model.state_dict().items()}


def export_hf(run: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Writes `out` loadable by GPT2LMHeadModel.from_pretrained and AutoTokenizer.from_pretrained; returns it."""
    try:
        from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast
    except ImportError:
        raise UsageError("export needs Hugging Face transformers: pip install 'mdr[export]'") from None
    from transformers.utils import logging as hf_logging

    from mdr.train.tokenizer import load_tokenizer

    hf_logging.disable_progress_bar()
    if Path(out).exists() and not Path(out).is_dir():
        raise UsageError(f"--hf {out} is a file, not a directory")
    model, _ = load_model(run)
    tokenizer = load_tokenizer(str(TrainLayout(run).tokenizer))
    hf_model = GPT2LMHeadModel(hf_config(model, tokenizer.eos_id))
    hf_model.load_state_dict(hf_state_dict(model), strict=True)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    hf_model.save_pretrained(out)
    hf_tokenizer = PreTrainedTokenizerFast(tokenizer_file=tokenizer.path, eos_token=EOS_TOKEN, bos_token=EOS_TOKEN,
                                           unk_token=EOS_TOKEN, model_max_length=model.config.block_size)
    hf_tokenizer.save_pretrained(out)
    return out
