"""What `mdr ablate`'s seeds say (issue 12.2): per arm and eval set, the mean ± sample standard deviation of bits per
byte over the seeds, and each arm's difference to the first arm with a 95% interval and a plain word.

Seeds pair across arms: seed k gives the same initialisation and the same data-order seed in every arm, so the
difference of two arms is estimated from the per-seed differences, with Student's t-interval for paired samples
(mean ± t(0.975, n−1) · s/√n, s the sample standard deviation of the differences): what the seed changes in both
arms alike cancels. With one seed there is no interval (no estimate of the noise), and the word says so.
Lower bits per byte is better; for a metric where higher is better (a multiple-choice task's accuracy) the functions
take `higher_is_better=True`, which turns the words around, not the values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy import stats

CONFIDENCE = 0.95  # issue 12: "each arm's difference to the first arm with a 95% interval"
BETTER, WORSE, NOISE = "better", "worse", "no difference beyond noise"
ONE_SEED = "one seed: no interval"
NOT_FINITE = "no estimate: a run's bits per byte is not finite"


@dataclass(frozen=True)
class Spread:
    """Mean ± sample standard deviation over seeds (std None with one seed; both None when a run's value is not
    finite, a diverged run: ablation.json stays strict JSON, which has no NaN or Infinity)."""

    mean: float | None
    std: float | None
    seeds: int


@dataclass(frozen=True)
class Difference:
    """An arm's bits per byte minus the first arm's, paired by seed: the mean difference, its interval (None with
    one seed) and the word for it (mean None when a run's value is not finite)."""

    mean: float | None
    low: float | None
    high: float | None
    seeds: int
    verdict: str


@dataclass(frozen=True)
class ArmResult:
    arm: str
    eval_set: str
    bpb: Spread
    difference: Difference | None  # to the first arm; None for the first arm itself


def spread(values: Sequence[float]) -> Spread:
    if not values:
        raise ValueError("no values")
    if not all(map(math.isfinite, values)):
        return Spread(mean=None, std=None, seeds=len(values))
    mean = math.fsum(values) / len(values)
    if len(values) == 1:
        return Spread(mean=mean, std=None, seeds=1)
    variance = math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return Spread(mean=mean, std=math.sqrt(variance), seeds=len(values))


def paired_difference(values: Sequence[float], baseline: Sequence[float], confidence: float = CONFIDENCE,
                      higher_is_better: bool = False) -> Difference:
    """`values` − `baseline`, element k of each from seed k: the paired t-interval of the mean difference, and
    "better" when it lies below 0 (fewer bits per byte; above 0 when `higher_is_better`), "worse" on the other side,
    NOISE when it holds 0. Differences equal at every seed give an interval of width 0."""
    if len(values) != len(baseline):
        raise ValueError(f"{len(values)} values against {len(baseline)} baseline values: seeds pair one to one")
    differences = [v - b for v, b in zip(values, baseline)]
    if not all(map(math.isfinite, differences)):  # a diverged run (inf - inf has no mean)
        return Difference(mean=None, low=None, high=None, seeds=len(differences), verdict=NOT_FINITE)
    summary = spread(differences)
    if summary.std is None:
        return Difference(mean=summary.mean, low=None, high=None, seeds=1, verdict=ONE_SEED)
    half = float(stats.t.ppf((1 + confidence) / 2, summary.seeds - 1)) * summary.std / math.sqrt(summary.seeds)
    low, high = summary.mean - half, summary.mean + half
    below, above = (WORSE, BETTER) if higher_is_better else (BETTER, WORSE)
    verdict = below if high < 0 else above if low > 0 else NOISE
    return Difference(mean=summary.mean, low=low, high=high, seeds=summary.seeds, verdict=verdict)


def compare_arms(bpb: Mapping[str, Mapping[str, Mapping[int, float]]],
                 higher_is_better: bool = False) -> list[ArmResult]:
    """Per arm (in the mapping's order, the first being the baseline) and eval set: the spread over seeds and the
    paired difference to the first arm. `bpb[arm][eval_set][seed]` is one run's final bits per byte (or, with
    `higher_is_better`, a metric where more is better, such as a task's accuracy, in ArmResult.bpb all the same);
    every arm must have the same eval sets and seeds (a run missing is a ValueError naming it)."""
    arms = list(bpb)
    if not arms:
        raise ValueError("no arms")
    first = bpb[arms[0]]
    results = []
    for arm in arms:
        if set(bpb[arm]) != set(first):
            raise ValueError(f"arm {arm} has eval sets {sorted(bpb[arm])}, arm {arms[0]} {sorted(first)}")
        for eval_set, by_seed in bpb[arm].items():
            seeds = sorted(first[eval_set])
            if sorted(by_seed) != seeds:
                raise ValueError(f"arm {arm}, {eval_set}: seeds {sorted(by_seed)}, arm {arms[0]} has {seeds}")
            values = [by_seed[seed] for seed in seeds]
            difference = None if arm == arms[0] else paired_difference(
                values, [first[eval_set][s] for s in seeds], higher_is_better=higher_is_better)
            results.append(ArmResult(arm=arm, eval_set=eval_set, bpb=spread(values), difference=difference))
    return results
