"""A GPT language model in one file, read top to bottom (after nanoGPT's model.py).

GPTConfig -> CausalSelfAttention, MLP -> Block -> GPT. Pre-LayerNorm residual blocks, causal self-attention through
F.scaled_dot_product_attention (flash kernels on GPU), a GELU MLP, and the token embedding tied to the output head.
The layout and parameter names follow GPT-2, so `mdr export` maps the weights onto Hugging Face's GPT2LMHeadModel.
Decoding lives in sample.py; the objective in objective.py; data parallelism in distributed.py (this file knows none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
from torch.nn import functional as F


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 50304  # GPT-2's 50,257 padded up to a multiple of 64 for faster matmuls (nanoGPT)
    block_size: int = 1024  # longest context, GPT-2
    n_layer: int = 12  # GPT-2 small (124M)
    n_head: int = 12  # GPT-2 small
    n_embd: int = 768  # GPT-2 small
    dropout: float = 0.0  # nanoGPT: 0 for pretraining, where every token is seen about once
    layer_norm_eps: float = 1e-5  # GPT-2 (and PyTorch's LayerNorm default)

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not a multiple of n_head {self.n_head}")


PRESETS: dict[str, GPTConfig] = {
    # Trains on a laptop CPU in minutes: 4 layers of width 128 (about 0.8M parameters besides the embedding).
    "tiny": GPTConfig(block_size=128, n_layer=4, n_head=4, n_embd=128),
    # GPT-2 small (Radford et al. 2019), as nanoGPT and llm.c reproduce it.
    "gpt2-124m": GPTConfig(),
}


def padded_vocab_size(vocab_size: int, multiple: int = 64) -> int:
    """The embedding size for a tokenizer of `vocab_size` tokens: rounded up to a multiple of 64 (nanoGPT)."""
    return -(-vocab_size // multiple) * multiple


def config_for(preset: str, vocab_size: int, block_size: int | None = None, n_layer: int | None = None,
               n_head: int | None = None, n_embd: int | None = None) -> GPTConfig:
    """The preset's shape with the tokenizer's (padded) vocabulary and, where given, another context length, depth,
    head count or width (`mdr train --n-layer/--n-head/--n-embd`, `mdr scale`'s sizes)."""
    if preset not in PRESETS:
        raise KeyError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    overrides = {"vocab_size": padded_vocab_size(vocab_size), "block_size": block_size, "n_layer": n_layer,
                 "n_head": n_head, "n_embd": n_embd}
    return replace(PRESETS[preset], **{key: value for key, value in overrides.items() if value is not None})


def shape_counts(config: GPTConfig, seq_len: int | None = None) -> dict:
    """What a scaling law needs of a shape, without allocating its weights (the model is built on the meta device):
    "n", the non-embedding parameters as Kaplan et al. 2020 (§2.1) count N, every parameter but the token and
    position embeddings (the tied output head is the token embedding); "n_total", every parameter once; and
    "flops_per_token", GPT.flops_per_token (which counts the output head's matmul: at mdr's small widths its
    6·V·d is as large as 6N, so C = 6·N·D alone would undercount the compute of a run several times)."""
    with torch.device("meta"):
        model = GPT(config)
    return {"n": model.num_params(non_embedding=True) - model.transformer.wte.weight.numel(),
            "n_total": model.num_params(non_embedding=False), "flops_per_token": model.flops_per_token(seq_len)}


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)  # query, key, value for all heads in one matmul
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.c_proj.residual_projection = True  # GPT-2 init: scaled by depth, see GPT._init_weights
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        # (B, T, C) -> (B, n_head, T, head_size)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        # Flash attention on GPU: the T x T attention matrix is never materialised.
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-assemble the heads side by side
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.gelu = nn.GELU(approximate="tanh")  # GPT-2's GELU ("gelu_new" in Hugging Face)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.c_proj.residual_projection = True
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-LayerNorm (GPT-2): normalise the input of each sub-layer, keep the residual stream itself unnormalised."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Weight tying (Press & Wolf 2017, GPT-2): the output head reuses the input embedding; saves V x d parameters.
        self.transformer.wte.weight = self.lm_head.weight
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            std = 0.02  # GPT-2
            if getattr(module, "residual_projection", False):
                # GPT-2: each block adds two projections to the residual stream, so their init is scaled by
                # 1/sqrt(2 * n_layer) to keep the stream's variance from growing with depth.
                std = 0.02 / math.sqrt(2 * self.config.n_layer)
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, vocab_size) of the next token at every position of idx (B, T); the loss is objective.py's."""
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence of length {T} is longer than the context, block_size {self.config.block_size}")
        pos = torch.arange(T, dtype=torch.long, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameters, counted once despite tying; without the position embedding by default (Kaplan et al. 2020's N)."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.transformer.wpe.weight.numel() if non_embedding else n

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token, forward and backward: 6N + 12·L·H·Q·T (PaLM appendix B; nanoGPT's estimate_mfu).

        N parameters, L layers, H heads, Q head size, T sequence length (the context by default).
        """
        L, H, Q = self.config.n_layer, self.config.n_head, self.config.n_embd // self.config.n_head
        T = seq_len or self.config.block_size
        return 6 * self.num_params() + 12 * L * H * Q * T
