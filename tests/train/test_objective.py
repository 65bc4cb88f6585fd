"""train/objective.py against values computed by hand on tiny constructed logits."""

import math

import pytest
import torch
from torch.nn import functional as F

from mdr.train import objective

# Two positions over a 3-token vocabulary.
#   position 0: logits (0, ln 2, ln 2) -> p = (1, 2, 2)/5 = (0.2, 0.4, 0.4); target 0
#       NLL = −ln 0.2 = ln 5 = 1.609438
#       H   = −(0.2 ln 0.2 + 2·0.4 ln 0.4) = 0.2 ln 5 + 0.8 ln 2.5 = 0.321888 + 0.733033 = 1.054920
#       mean_v(−ln p_v) = (ln 5 + 2 ln 2.5)/3 = (1.609438 + 1.832581)/3 = 1.147340
#   position 1: logits (0, 0, 0) -> p = 1/3 each; target 2
#       NLL = ln 3 = 1.098612, H = ln 3, mean_v(−ln p_v) = ln 3
LOGITS = torch.tensor([[[0.0, math.log(2), math.log(2)], [0.0, 0.0, 0.0]]])  # (B=1, T=2, V=3)
TARGETS = torch.tensor([[0, 2]])
NLL = (1.609438 + 1.098612) / 2  # = ln 15 / 2 = 1.354025
ENTROPY = (1.054920 + 1.098612) / 2  # = 1.076766
UNIFORM_CE = (1.147340 + 1.098612) / 2  # = 1.122976


def test_plain_mle_is_the_mean_nll():
    value, nll = objective.loss(LOGITS, TARGETS)
    assert value.item() == pytest.approx(NLL, abs=1e-5)
    assert nll.item() == pytest.approx(NLL, abs=1e-5)


def test_label_smoothing_by_hand():
    # ε = 0.1: (1 − ε)·NLL + ε·mean_v(−ln p_v) = 0.9·1.354025 + 0.1·1.122976 = 1.218623 + 0.112298 = 1.330920
    value, nll = objective.loss(LOGITS, TARGETS, label_smoothing=0.1)
    assert value.item() == pytest.approx(1.330920, abs=1e-5)
    assert nll.item() == pytest.approx(NLL, abs=1e-5)  # the plain NLL beside the smoothed loss


def test_label_smoothing_matches_torch_cross_entropy():
    torch.manual_seed(0)
    logits, targets = torch.randn(4, 7, 11), torch.randint(0, 11, (4, 7))
    value, _ = objective.loss(logits, targets, label_smoothing=0.2)
    expected = F.cross_entropy(logits.view(-1, 11), targets.view(-1), label_smoothing=0.2)
    assert value.item() == pytest.approx(expected.item(), abs=1e-6)


def test_entropy_regularisation_by_hand():
    # λ = 0.5: NLL − λ·H = 1.354025 − 0.5·1.076766 = 1.354025 − 0.538383 = 0.815642
    value, nll = objective.loss(LOGITS, TARGETS, entropy_reg=0.5)
    assert value.item() == pytest.approx(0.815642, abs=1e-5)
    assert nll.item() == pytest.approx(NLL, abs=1e-5)


def test_smoothing_and_entropy_regularisation_combine():
    # 1.330920 − 0.5·1.076766 = 0.792537
    value, _ = objective.loss(LOGITS, TARGETS, label_smoothing=0.1, entropy_reg=0.5)
    assert value.item() == pytest.approx(0.792537, abs=1e-5)


def test_entropy_regularisation_pushes_entropy_up():
    """One gradient step on NLL − λH leaves the next-token distribution flatter than a step on the NLL alone."""
    torch.manual_seed(0)
    start, targets = torch.randn(8, 5) * 3, torch.randint(0, 5, (8,))
    entropies = []
    for reg in (0.0, 1.0):
        logits = start.clone().requires_grad_(True)
        objective.loss(logits, targets, entropy_reg=reg)[0].backward()
        entropies.append(objective.token_entropy(logits.detach() - 1.0 * logits.grad).mean().item())
    assert entropies[1] > entropies[0]


def test_token_entropy_by_hand():
    assert objective.token_entropy(LOGITS)[0].tolist() == pytest.approx([1.054920, 1.098612], abs=1e-5)


def _two_way_logits(confidence: float) -> list[float]:
    return [math.log(confidence / (1 - confidence)), 0.0]  # softmax -> (confidence, 1 − confidence)


def test_ece_constructed_case():
    # top-1 confidence, correct?   bin (15 equal-width bins, m-th holds ((m−1)/15, m/15])
    #   0.90 yes, 0.90 no           (0.8667, 0.9333]: n=2, Σcorrect=1, Σconf=1.80 -> |1 − 1.80| = 0.80
    #   0.75 yes, 0.78 yes          (0.7333, 0.8000]: n=2, Σcorrect=2, Σconf=1.53 -> |2 − 1.53| = 0.47
    #   0.55 yes                    (0.5333, 0.6000]: n=1, Σcorrect=1, Σconf=0.55 -> |1 − 0.55| = 0.45
    # ECE = Σ_m |Σcorrect − Σconf| / N = (0.80 + 0.47 + 0.45) / 5 = 0.344
    # (one bin for everything would give |4 − 3.88|/5 = 0.024; merging the top two bins (0.33 + 0.45)/5 = 0.156)
    confidences = [0.90, 0.90, 0.75, 0.78, 0.55]
    logits = torch.tensor([_two_way_logits(c) for c in confidences])
    targets = torch.tensor([0, 1, 0, 0, 0])  # token 0 is every row's top-1 prediction
    assert objective.expected_calibration_error(logits, targets) == pytest.approx(0.344, abs=1e-6)
    count, confidence_sum, correct_sum = objective.calibration_bins(logits, targets)
    assert count.tolist() == [0] * 8 + [1, 0, 0, 2, 0, 2, 0]
    assert correct_sum[13].item() == 1 and correct_sum[11].item() == 2
    assert confidence_sum[11].item() == pytest.approx(1.53, abs=1e-6)


def test_ece_of_a_calibrated_bin_is_zero():
    # four predictions at confidence 0.75, three right: accuracy = confidence.
    logits = torch.tensor([_two_way_logits(0.75)] * 4)
    assert objective.expected_calibration_error(logits, torch.tensor([0, 0, 0, 1])) == pytest.approx(0, abs=1e-6)


def test_bins_add_up_across_batches():
    torch.manual_seed(1)
    logits, targets = torch.randn(10, 6), torch.randint(0, 6, (10,))
    halves = [objective.calibration_bins(logits[i:i + 5], targets[i:i + 5]) for i in (0, 5)]
    summed = [a + b for a, b in zip(*halves)]
    assert objective.ece_from_bins(*summed) == pytest.approx(objective.expected_calibration_error(logits, targets))


def test_perplexity_bits_per_byte_and_gap():
    assert objective.perplexity(math.log(7)) == pytest.approx(7.0)
    # 8 ln 2 nats spread over 4 bytes is 2 bits per byte
    assert objective.bits_per_byte(8 * math.log(2), 4) == pytest.approx(2.0)
    assert objective.calibration_gap(NLL, ENTROPY) == pytest.approx(1.354025 - 1.076766, abs=1e-6)
