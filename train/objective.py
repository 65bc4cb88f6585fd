"""The training objective and the held-out metrics that watch what MLE does to a model's confidence (lecture §3).

Objective: mean next-token negative log-likelihood (maximum likelihood); optionally label smoothing ε (the targets'
one-hot mixed with ε of uniform mass, as F.cross_entropy(label_smoothing=ε) does) and entropy-regularised MLE,
loss = NLL − λ·mean token entropy, which rewards less peaked next-token distributions. `loss` always returns the
plain NLL beside the loss, since a smoothed or regularised loss is not a perplexity.

Metrics (all in nats unless named otherwise): token entropy, expected calibration error over equal-width bins of the
top-1 confidence (Guo et al. 2017), perplexity, bits per byte and the calibration gap mean(NLL) − mean(entropy).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

ECE_BINS = 15  # Guo et al. 2017, "On Calibration of Modern Neural Networks": M = 15 equal-width bins


def loss(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0,
         entropy_reg: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(training loss, plain mean NLL) of next-token logits (..., V) against targets (...).

    loss = (1 − ε)·NLL + ε·mean_v(−log p_v) − λ·H, averaged over positions; with ε = λ = 0 it is the NLL itself.
    """
    logits = logits.reshape(-1, logits.size(-1)).float()  # the softmax in float32 even under bf16 autocast
    targets = targets.reshape(-1)
    if label_smoothing == 0.0 and entropy_reg == 0.0:
        nll = F.cross_entropy(logits, targets)  # the fused kernel: no (N, V) log-probabilities kept
        return nll, nll
    log_probs = F.log_softmax(logits, dim=-1)
    nll = -log_probs.gather(-1, targets[:, None]).mean()
    objective = nll
    if label_smoothing:
        # The smoothed target puts 1 − ε + ε/V on the label and ε/V on every other token (F.cross_entropy).
        objective = (1.0 - label_smoothing) * nll - label_smoothing * log_probs.mean(dim=-1).mean()
    if entropy_reg:
        objective = objective - entropy_reg * _entropy(log_probs).mean()
    return objective, nll


def _entropy(log_probs: torch.Tensor) -> torch.Tensor:
    return -(log_probs.exp() * log_probs).sum(dim=-1)


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy H = −Σ_v p_v log p_v (nats) of the next-token distribution at each position: shape logits.shape[:-1]."""
    return _entropy(F.log_softmax(logits.float(), dim=-1))


def calibration_bins(logits: torch.Tensor, targets: torch.Tensor,
                     n_bins: int = ECE_BINS) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per bin of top-1 confidence: (count, sum of confidences, count of correct top-1 predictions), float64.

    Bin m holds confidences in ((m−1)/M, m/M] (Guo et al. 2017); sums over batches (and ranks) add up.
    """
    probs = F.softmax(logits.reshape(-1, logits.size(-1)).float(), dim=-1)
    confidence, prediction = probs.max(dim=-1)
    correct = (prediction == targets.reshape(-1)).double()
    index = (torch.ceil(confidence.double() * n_bins).long() - 1).clamp(0, n_bins - 1)
    zeros = torch.zeros(n_bins, dtype=torch.float64, device=logits.device)
    return (zeros.index_add(0, index, torch.ones_like(correct)), zeros.index_add(0, index, confidence.double()),
            zeros.index_add(0, index, correct))


def ece_from_bins(count: torch.Tensor, confidence_sum: torch.Tensor, correct_sum: torch.Tensor) -> float:
    """ECE = Σ_m (n_m / N)·|accuracy_m − confidence_m| = Σ_m |correct_m − confidence_sum_m| / N."""
    total = count.sum().item()
    return (correct_sum - confidence_sum).abs().sum().item() / total if total else float("nan")


def expected_calibration_error(logits: torch.Tensor, targets: torch.Tensor, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error of the top-1 predictions, n_bins equal-width confidence bins."""
    return ece_from_bins(*calibration_bins(logits, targets, n_bins))


def perplexity(mean_nll: float) -> float:
    """exp(mean NLL in nats): the effective number of equally likely next tokens."""
    return math.exp(mean_nll)


def bits_per_byte(nll_sum: float, n_bytes: int) -> float:
    """Summed NLL (nats) over ln 2 · the UTF-8 bytes of the predicted text: comparable across tokenizers."""
    return nll_sum / (math.log(2) * n_bytes) if n_bytes else float("nan")


def calibration_gap(mean_nll: float, mean_entropy: float) -> float:
    """mean(NLL) − mean(entropy): 0 when the model is as surprised as it expects to be; > 0 is over-confidence."""
    return mean_nll - mean_entropy
