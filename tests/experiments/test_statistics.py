"""experiments/statistics.py against a textbook paired t-test, a 3-seed interval computed by hand, and the edge
cases: one seed, zero variance, a run that diverged, runs missing."""

import json
import math
from dataclasses import asdict

import pytest

from mdr.experiments.statistics import (
    BETTER,
    NOISE,
    NOT_FINITE,
    ONE_SEED,
    WORSE,
    Spread,
    compare_arms,
    paired_difference,
    spread,
)

# Student's sleep data (Cushny & Peebles 1905, as R's `sleep`): extra hours of sleep of 10 patients under two drugs.
# R: t.test(extra ~ group, data = sleep, paired = TRUE) gives mean difference -1.58, 95 percent confidence interval
# -2.4598858 -0.7001142 (t = -4.0621, df = 9); sd(extra) per group 1.789010 and 2.002249.
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def test_the_paired_interval_of_a_textbook_example():
    difference = paired_difference(SLEEP_1, SLEEP_2)
    assert difference.mean == pytest.approx(-1.58)
    assert difference.low == pytest.approx(-2.4598858, abs=1e-7)
    assert difference.high == pytest.approx(-0.7001142, abs=1e-7)
    assert difference.seeds == 10 and difference.verdict == BETTER  # fewer bits per byte
    assert paired_difference(SLEEP_2, SLEEP_1).verdict == WORSE
    assert spread(SLEEP_1).mean == pytest.approx(0.75) and spread(SLEEP_1).std == pytest.approx(1.789010, abs=1e-6)
    assert spread(SLEEP_2).mean == pytest.approx(2.33) and spread(SLEEP_2).std == pytest.approx(2.002249, abs=1e-6)


def test_three_seeds_all_better_can_be_noise():
    """Differences -0.02, -0.03, -0.01: mean -0.02, s = 0.01, t(0.975, 2) = 4.302653 (t table), half-width
    4.302653 × 0.01 / √3 = 0.0248414: the interval [-0.0448414, 0.0048414] holds 0."""
    baseline = [1.50, 1.60, 1.55]
    difference = paired_difference([b + d for b, d in zip(baseline, [-0.02, -0.03, -0.01])], baseline)
    assert difference.mean == pytest.approx(-0.02)
    assert difference.low == pytest.approx(-0.0448414, abs=1e-7)
    assert difference.high == pytest.approx(0.0048414, abs=1e-7)
    assert difference.verdict == NOISE == "no difference beyond noise"


def test_one_seed_gives_no_interval_and_says_so():
    assert spread([1.25]) == Spread(mean=1.25, std=None, seeds=1)
    difference = paired_difference([1.0], [1.25])
    assert (difference.mean, difference.low, difference.high, difference.seeds) == (-0.25, None, None, 1)
    assert difference.verdict == ONE_SEED and "no interval" in ONE_SEED


def test_zero_variance_gives_an_interval_of_width_zero():
    worse = paired_difference([1.5, 2.5, 3.5], [1.25, 2.25, 3.25])  # +0.25 at every seed, exactly
    assert (worse.mean, worse.low, worse.high, worse.verdict) == (0.25, 0.25, 0.25, WORSE)
    same = paired_difference([1.5, 2.5], [1.5, 2.5])
    assert (same.low, same.high, same.verdict) == (0.0, 0.0, NOISE)
    assert spread([2.0, 2.0, 2.0]).std == 0.0


def test_a_run_that_diverged_gives_no_estimate():
    difference = paired_difference([1.0, math.nan, 1.1], [1.2, 1.3, 1.4])
    assert difference.verdict == NOT_FINITE and difference.low is None and difference.high is None
    assert paired_difference([1.0, math.inf], [1.2, 1.3]).verdict == NOT_FINITE
    # inf - inf has no mean: still the verdict, not a ValueError from fsum; and nothing that is not strict JSON
    both = paired_difference([math.inf, 1.0], [1.0, math.inf])
    assert both.verdict == NOT_FINITE and both.mean is None
    assert spread([math.inf, math.inf]) == Spread(mean=None, std=None, seeds=2)
    json.dumps(asdict(both), allow_nan=False)


def test_seeds_must_pair():
    with pytest.raises(ValueError, match="seeds pair one to one"):
        paired_difference([1.0, 1.1], [1.0])
    with pytest.raises(ValueError):
        spread([])


def test_compare_arms_pairs_by_seed_number_and_leaves_the_first_arm_without_difference():
    bpb = {
        "extract": {"heldout-first": {0: SLEEP_2[0], 1: SLEEP_2[1], 2: SLEEP_2[2]}, "clean": {0: 2.0, 1: 2.0, 2: 2.0}},
        # seeds given out of order: paired by number, not by position
        "lines": {"heldout-first": {2: SLEEP_1[2], 0: SLEEP_1[0], 1: SLEEP_1[1]}, "clean": {0: 1.5, 1: 1.5, 2: 1.5}},
    }
    results = compare_arms(bpb)
    assert [(r.arm, r.eval_set) for r in results] == [("extract", "heldout-first"), ("extract", "clean"),
                                                      ("lines", "heldout-first"), ("lines", "clean")]
    assert results[0].difference is None and results[1].difference is None
    assert results[2].difference == paired_difference(SLEEP_1[:3], SLEEP_2[:3])
    assert results[2].bpb == spread(SLEEP_1[:3])
    assert (results[3].difference.mean, results[3].difference.verdict) == (-0.5, BETTER)
    json.dumps([asdict(r) for r in results])  # ablation.json holds them as they are


def test_compare_arms_names_a_missing_run():
    with pytest.raises(ValueError, match=r"arm lines, heldout-first: seeds \[0, 2\], arm extract has \[0, 1, 2\]"):
        compare_arms({"extract": {"heldout-first": {0: 1.0, 1: 1.0, 2: 1.0}},
                      "lines": {"heldout-first": {0: 1.0, 2: 1.0}}})
    with pytest.raises(ValueError, match="eval sets"):
        compare_arms({"extract": {"heldout-first": {0: 1.0}}, "lines": {"clean": {0: 1.0}}})


def test_higher_is_better_turns_the_words_around_not_the_values():
    """An accuracy: the same differences as bits per byte, the same interval, the opposite word."""
    lower = paired_difference(SLEEP_1, SLEEP_2)
    higher = paired_difference(SLEEP_1, SLEEP_2, higher_is_better=True)
    assert (higher.mean, higher.low, higher.high) == (lower.mean, lower.low, lower.high)
    assert (lower.verdict, higher.verdict) == (BETTER, WORSE)
    assert paired_difference(SLEEP_2, SLEEP_1, higher_is_better=True).verdict == BETTER
    assert paired_difference([0.30, 0.40, 0.35], [0.32, 0.38, 0.36], higher_is_better=True).verdict == NOISE
    accuracy = {"extract": {"task": {0: 0.25, 1: 0.25}}, "lines": {"task": {0: 0.5, 1: 0.5}}}
    results = compare_arms(accuracy, higher_is_better=True)
    assert (results[1].difference.mean, results[1].difference.verdict) == (0.25, BETTER)
    assert compare_arms(accuracy)[1].difference.verdict == WORSE  # the default: lower is better
