"""The fits of `mdr scale` (issue 13.3-4): what a sweep of finished training runs says about loss against model size
N and tokens D, and what it predicts.

- Approach 2 (Hoffmann et al. 2022, §3.2, "IsoFLOP profiles"): the runs of one compute budget, a parabola of loss
  against ln N, its minimum N_opt(C); then N_opt ∝ C^a and D_opt ∝ C^b by least squares in log space.
- Approach 3 (Hoffmann et al. 2022, §3.3 and Appendix D.2): L(N, D) = E + A/N^α + B/D^β, fitted by minimising the
  Huber loss (δ = 1e-3) of log L_predicted − log L with L-BFGS from their grid of starting points, with bootstrap
  intervals over runs: Besiroglu et al. 2024 ("Chinchilla Scaling: A replication attempt", arXiv:2404.10102) refit
  Hoffmann's data and found the published intervals far too narrow for ~400 runs.
- `compute_optimal`: the closed-form N*(C), D*(C) of an approach-3 law under C = 6 N D (Hoffmann's eq. 4).
- `validate`: the largest-compute budgets left out of the approach-3 fit and their loss predicted.

Published fits, for scale (L in nats per token on MassiveText, N total parameters): Hoffmann et al. 2022 §3.3
E = 1.69, A = 406.4, B = 410.7, α = 0.34, β = 0.28 (the exponents in their TeX source are 0.3392 and 0.2849;
Besiroglu et al. 2024, abstract: the rounding "results in substantial bias in the predictions of the scaling law");
Besiroglu et al.'s refit on data read off Hoffmann's plots: E = 1.8172, A = 482.01, B = 2085.43, α = 0.3478,
β = 0.3658, whose optimum is ~20 tokens per parameter like Chinchilla's (tests/experiments/test_scaling_fit.py
checks the allocations all three give). mdr's N is Kaplan's (non-embedding parameters), so its constants are
comparable in form, not in value.

Every result is a plain dict of JSON numbers with a "method" sentence saying what was fitted how (scaling.json and
the page print it). Inputs the fit cannot use are a ValueError with one sentence the CLI turns into a UsageError.
numpy and scipy only: no torch.
"""

from __future__ import annotations

import ctypes
import itertools
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy
from scipy.optimize import minimize
from scipy.special import logsumexp

HUBER_DELTA = 1e-3  # Hoffmann et al. 2022, App. D.2: "δ = 10^-3"

# Hoffmann et al. 2022, App. D.2: the grid of initialisations, over the log-space parameters a = log A, b = log B,
# e = log E and the exponents.
GRID_ALPHA = GRID_BETA = (0.0, 0.5, 1.0, 1.5, 2.0)
GRID_E = (-1.0, -0.5, 0.0, 0.5, 1.0)
GRID_A = GRID_B = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)
# The full grid is 4500 starts; L-BFGS from each costs minutes on 2 cores, and again for every bootstrap resample.
# The objective is evaluated at all 4500 in one vectorised pass and L-BFGS runs from the REFINED_STARTS best: on the
# tests' synthetic sweeps every start among the best 16 reaches the same optimum (tests/experiments/
# test_scaling_fit.py: test_the_refined_starts_find_the_full_grid_optimum compares with L-BFGS from all 4500).
REFINED_STARTS = 16
# A bootstrap resample is refitted from the full-data optimum and the full data's best 2 grid points (ranking the
# grid again for each resample cost more than the fits themselves, 34 ms against ~40 ms for 25 runs, and the fits
# from the three starts reached the same optimum on every resample tried).
BOOTSTRAP_STARTS = 2
CONFIDENCE = 0.95  # percentile intervals: the 2.5th and 97.5th percentiles of the bootstrap fits
# Bounds keep exp() finite and the exponents non-negative (a loss that rises with N or D is no scaling law).
BOUNDS = ((-30.0, 60.0), (-30.0, 60.0), (-10.0, 10.0), (0.0, 5.0), (0.0, 5.0))  # a, b, e, alpha, beta
# Besiroglu et al. 2024 (abstract): Hoffmann's optimiser "stopped before convergence due to a poor choice of loss
# scale". The objective here is the Huber loss divided by δ (same minimum; residuals beyond δ count as |r| - δ/2, gradients
# of order 1), with tolerances far below scipy's defaults.
LBFGS_OPTIONS = {"ftol": 1e-15, "gtol": 1e-10, "maxiter": 10_000, "maxfun": 20_000}

MIN_RUNS_APPROACH3 = 5  # five constants
MIN_SIZES_PER_BUDGET = 3  # fewer points do not determine a parabola
BUDGET_TOLERANCE = 0.01  # runs whose compute agrees within 1% (relative) share an IsoFLOP budget


@dataclass(frozen=True)
class Point:
    """One finished training run."""

    n: float  # non-embedding parameters (Kaplan's N)
    d: float  # training tokens
    c: float  # training FLOPs (flops_per_token * d, the run's own accounting)
    loss: float  # final held-out loss, nats per token
    name: str = ""  # the run's name, for messages and residual tables


def _usable(points: Sequence[Point]) -> tuple[list[Point], int]:
    """The points with a finite loss, and how many were left out (a diverged run). A size, token count or budget
    that is not a positive finite number is an error: it is the sweep's own accounting, not an outcome."""
    for point in points:
        if not all(math.isfinite(v) and v > 0 for v in (point.n, point.d, point.c)):
            raise ValueError(f"run {point.name or '?'} has N = {point.n}, D = {point.d}, C = {point.c}: "
                             "each must be a positive number")
    kept = [p for p in points if math.isfinite(p.loss) and p.loss > 0]
    return kept, len(points) - len(kept)


def _excluded_sentence(excluded: int) -> str:
    return f" {excluded} run(s) without a finite, positive loss were left out." if excluded else ""


def group_budgets(points: Sequence[Point], tolerance: float = BUDGET_TOLERANCE) -> list[list[Point]]:
    """The runs grouped by compute budget, in increasing order: sorted by C, a run joins the current group while
    its C is within `tolerance` (relative) of the group's smallest."""
    groups: list[list[Point]] = []
    for point in sorted(points, key=lambda p: p.c):
        if groups and point.c <= groups[-1][0].c * (1 + tolerance):
            groups[-1].append(point)
        else:
            groups.append([point])
    return groups


# ---------------------------------------------------------------------------------------------------- Approach 2


def _power_law(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """y = coefficient · x^exponent by least squares on (ln x, ln y): (exponent, coefficient)."""
    exponent, intercept = np.polyfit(np.log(x), np.log(y), 1)
    return float(exponent), float(math.exp(intercept))


def fit_approach2(points: Sequence[Point]) -> dict:
    """IsoFLOP profiles: per budget (runs with equal C up to 1%) with at least 3 model sizes, the parabola
    loss = c2·(ln N)² + c1·ln N + c0, its minimum N_opt and D_opt = C / (FLOPs per token at N_opt), the run's own
    FLOPs per token C/D interpolated log-log between the budget's runs (≈ 6 N_opt); then N_opt = n_coefficient ·
    C^a and D_opt = d_coefficient · C^b by least squares in log space (a, b None with fewer than 2 budgets).
    A budget with fewer sizes, or whose parabola opens downwards (no minimum), is listed under "skipped"."""
    kept, excluded = _usable(points)
    budgets, skipped = [], []
    for group in group_budgets(kept):
        c = float(np.mean([p.c for p in group]))
        sizes = sorted({p.n for p in group})
        if len(sizes) < MIN_SIZES_PER_BUDGET:
            skipped.append({"c": c, "sizes": len(sizes),
                            "reason": f"{len(sizes)} model size(s), a parabola needs {MIN_SIZES_PER_BUDGET}"})
            continue
        log_n = np.log([p.n for p in group])
        c2, c1, c0 = (float(v) for v in np.polyfit(log_n, [p.loss for p in group], 2))
        if c2 <= 0:
            skipped.append({"c": c, "sizes": len(sizes),
                            "reason": "the parabola opens downwards: loss has no minimum in N at this budget"})
            continue
        log_n_opt = -c1 / (2 * c2)
        slope, intercept = np.polyfit(log_n, np.log([p.c / p.d for p in group]), 1)
        flops_per_token = math.exp(intercept + slope * log_n_opt)
        budgets.append({
            "c": c, "n_opt": math.exp(log_n_opt), "d_opt": c / flops_per_token,
            "loss_opt": c0 - c1 * c1 / (4 * c2), "parabola": [c2, c1, c0], "sizes": len(sizes),
            # a minimum outside the sampled sizes is the parabola extrapolated: the page and table mark it
            "extrapolated": bool(not log_n.min() <= log_n_opt <= log_n.max())})
    a = b = n_coefficient = d_coefficient = None
    if len(budgets) >= 2:
        compute = [row["c"] for row in budgets]
        a, n_coefficient = _power_law(compute, [row["n_opt"] for row in budgets])
        b, d_coefficient = _power_law(compute, [row["d_opt"] for row in budgets])
    method = (f"Approach 2 (Hoffmann et al. 2022, §3.2): the {len(kept)} runs grouped by compute budget (equal C up "
              f"to {BUDGET_TOLERANCE:.0%}); per budget with at least {MIN_SIZES_PER_BUDGET} model sizes a "
              "least-squares parabola of loss against ln N (N non-embedding parameters), its minimum N_opt(C) and "
              "D_opt = C / (FLOPs per token at N_opt); ")
    method += ("then N_opt = n_coefficient·C^a and D_opt = d_coefficient·C^b by least squares on (ln C, ln N_opt) "
               "and (ln C, ln D_opt)." if a is not None else
               f"no power law in C: {len(budgets)} budget(s) had a usable parabola, 2 are needed.")
    if skipped:
        method += f" {len(skipped)} budget(s) skipped (see skipped)."
    method += _excluded_sentence(excluded)
    return {"method": method, "budgets": budgets, "skipped": skipped, "parabola_variable": "ln N",
            "a": a, "b": b, "n_coefficient": n_coefficient, "d_coefficient": d_coefficient,
            "runs": len(kept), "excluded": excluded}


# ---------------------------------------------------------------------------------------------------- Approach 3


def _terms(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray) -> np.ndarray:
    """The three log-space terms a − α ln N, b − β ln D, e for each row of theta (a, b, e, α, β), the whole grid
    at once: shape theta.shape[:-1] + (3, runs). log L_predicted is their log-sum-exp (Hoffmann et al. App. D.2)."""
    a, b, e, alpha, beta = (theta[..., i, None] for i in range(5))
    return np.stack(np.broadcast_arrays(a - alpha * log_n, b - beta * log_d, e + 0 * log_n), axis=-2)


def _huber_over_delta(residual: np.ndarray, delta: float) -> np.ndarray:
    absolute = np.abs(residual)
    return np.where(absolute <= delta, residual * residual / (2 * delta), absolute - delta / 2)


def _objective(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_loss: np.ndarray,
               delta: float) -> tuple[float, np.ndarray]:
    """Σ Huber_δ(r)/δ over the runs, r = LSE(terms) − log L, and its gradient in (a, b, e, α, β): the derivative
    of the LSE is the softmax weights w of the three terms, so ∂r = (w_N, w_D, w_E, −w_N ln N, −w_D ln D). Written
    out on 1-D arrays: L-BFGS calls it a hundred times or more per start."""
    a, b, e, alpha, beta = theta
    term_n, term_d = a - alpha * log_n, b - beta * log_d
    top = np.maximum(np.maximum(term_n, term_d), e)
    exp_n, exp_d, exp_e = np.exp(term_n - top), np.exp(term_d - top), np.exp(e - top)
    total = exp_n + exp_d + exp_e
    residual = top + np.log(total) - log_loss
    slope = np.clip(residual, -delta, delta) / (delta * total)  # Huber'(r)/δ, divided by Σ exp for the weights
    g_n, g_d = exp_n * slope, exp_d * slope
    gradient = np.array([g_n.sum(), g_d.sum(), (exp_e * slope).sum(), -(g_n @ log_n), -(g_d @ log_d)])
    return float(_huber_over_delta(residual, delta).sum()), gradient


def _grid() -> np.ndarray:
    return np.array([(a, b, e, alpha, beta) for alpha, beta, e, a, b in
                     itertools.product(GRID_ALPHA, GRID_BETA, GRID_E, GRID_A, GRID_B)])


GRID = _grid()


def _best_grid_starts(log_n: np.ndarray, log_d: np.ndarray, log_loss: np.ndarray, delta: float,
                      count: int) -> np.ndarray:
    """The `count` grid points of lowest objective, found in one vectorised evaluation of the whole grid."""
    residual = logsumexp(_terms(GRID, log_n, log_d), axis=-2) - log_loss
    values = _huber_over_delta(residual, delta).sum(axis=-1)
    return GRID[np.argsort(values, kind="stable")[:count]]


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """scipy's L-BFGS-B calls BLAS and LAPACK on tiny matrices (5 parameters, 10 corrections) at every iteration;
    the OpenBLAS bundled with scipy's wheels wakes its thread pool for each call, which made the fit 8 to 45 times
    slower on 2 busy cores (4 fits from grid starts: 1.3-4.2 s with 2 threads, 0.09-0.16 s with one, measured while
    other processes held both cores). One thread for the fit, the previous count restored after; another BLAS (a
    distribution's scipy) is left as it is."""
    library = None
    for path in sorted((Path(scipy.__file__).parent.parent / "scipy.libs").glob("libscipy_openblas*.so*")):
        try:
            candidate = ctypes.CDLL(str(path))  # already loaded by scipy: dlopen returns the same library
        except OSError:
            continue
        if all(hasattr(candidate, f"scipy_openblas_{verb}_num_threads") for verb in ("get", "set")):
            library = candidate
            break
    if library is None:
        yield
        return
    before = library.scipy_openblas_get_num_threads()
    library.scipy_openblas_set_num_threads(1)
    try:
        yield
    finally:
        library.scipy_openblas_set_num_threads(before)


def _minimise(starts: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_loss: np.ndarray,
              delta: float) -> tuple[np.ndarray, float]:
    """L-BFGS-B from each start; the lowest objective reached (parameters in log space, objective)."""
    best, best_value = None, math.inf
    for start in starts:
        result = minimize(_objective, start, args=(log_n, log_d, log_loss, delta), jac=True, method="L-BFGS-B",
                          bounds=BOUNDS, options=LBFGS_OPTIONS)
        if math.isfinite(result.fun) and result.fun < best_value:
            best, best_value = result.x, float(result.fun)
    if best is None:
        raise ValueError("the approach-3 fit found no finite optimum from any starting point")
    return best, best_value


def _constants(theta: np.ndarray) -> dict:
    a, b, e, alpha, beta = (float(v) for v in theta)
    return {"E": math.exp(e), "A": math.exp(a), "B": math.exp(b), "alpha": alpha, "beta": beta}


def _arrays(points: Sequence[Point]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.log([p.n for p in points]), np.log([p.d for p in points]), np.log([p.loss for p in points]))


def fit_approach3(points: Sequence[Point], *, bootstrap: int = 200, seed: int = 0, delta: float = HUBER_DELTA,
                  starts: int = REFINED_STARTS) -> dict:
    """L(N, D) = E + A/N^α + B/D^β by Huber(δ) on log residuals with L-BFGS-B from the best `starts` of Hoffmann
    et al.'s grid, then `bootstrap` resamples of the runs (with replacement, seeded) refitted from the full-data
    optimum and the full data's best 2 grid points: 95% percentile intervals of E, A, B, α, β ("intervals"
    None when bootstrap is 0). "residuals" holds every run's loss beside the fit's."""
    kept, excluded = _usable(points)
    if len(kept) < MIN_RUNS_APPROACH3:
        raise ValueError(f"approach 3 fits 5 constants and needs at least {MIN_RUNS_APPROACH3} runs with a finite "
                         f"loss; there are {len(kept)}" + (f" ({excluded} without one)" if excluded else ""))
    if len({p.n for p in kept}) < 2 or len({p.d for p in kept}) < 2:
        raise ValueError("approach 3 needs runs at 2 or more model sizes and 2 or more token counts: "
                         f"the runs have {len({p.n for p in kept})} size(s) and {len({p.d for p in kept})} "
                         "token count(s)")
    if bootstrap < 0:
        raise ValueError(f"bootstrap must be 0 or more, not {bootstrap}")
    log_n, log_d, log_loss = _arrays(kept)
    samples = []
    grid_starts = _best_grid_starts(log_n, log_d, log_loss, delta, max(starts, BOOTSTRAP_STARTS))
    with _one_blas_thread():
        theta, _ = _minimise(grid_starts[:starts], log_n, log_d, log_loss, delta)
        rng = np.random.default_rng(seed)
        for _ in range(bootstrap):
            pick = rng.integers(0, len(kept), len(kept))
            resample = log_n[pick], log_d[pick], log_loss[pick]
            starts_here = np.vstack([theta, grid_starts[:BOOTSTRAP_STARTS]])
            samples.append(_constants(_minimise(starts_here, *resample, delta)[0]))
    fit = _constants(theta)
    intervals = None
    if bootstrap:
        tail = 100 * (1 - CONFIDENCE) / 2
        intervals = {key: [float(v) for v in np.percentile([s[key] for s in samples], [tail, 100 - tail])]
                     for key in ("E", "A", "B", "alpha", "beta")}
    residuals = [{"name": p.name, "n": p.n, "d": p.d, "c": p.c, "loss": p.loss, "predicted": predict(fit, p.n, p.d)}
                 for p in kept]
    method = (f"Approach 3 (Hoffmann et al. 2022, §3.3 and App. D.2): L(N, D) = E + A/N^alpha + B/D^beta fitted to "
              f"{len(kept)} runs (N non-embedding parameters, D training tokens) by minimising the Huber loss "
              f"(delta = {delta:g}) of log L_predicted - log L, log L_predicted = LSE(a - alpha ln N, b - beta ln D, "
              f"e), with L-BFGS-B from the {starts} best of Hoffmann et al.'s {len(GRID)} grid starting points "
              "(the whole grid evaluated, the best refined).")
    method += (f" 95% percentile intervals from {bootstrap} bootstrap resamples of the runs (seed {seed}), each "
               f"refitted from the full-data optimum and the full data's {BOOTSTRAP_STARTS} best grid points."
               if bootstrap else " No bootstrap: no intervals.")
    method += _excluded_sentence(excluded)
    return {"method": method, **fit, "intervals": intervals, "residuals": residuals, "bootstrap": bootstrap,
            "seed": seed, "delta": delta, "runs": len(kept), "excluded": excluded}


def predict(fit3: dict, n: float, d: float) -> float:
    """The loss an approach-3 fit predicts for N parameters trained on D tokens."""
    return float(fit3["E"] + fit3["A"] / n ** fit3["alpha"] + fit3["B"] / d ** fit3["beta"])


def compute_optimal(fit3: dict, budget: float) -> dict:
    """The N and D that minimise an approach-3 law under C = 6 N D (Hoffmann et al. 2022, eq. 4):
    N*(C) = G (C/6)^a, D*(C) = G⁻¹ (C/6)^b, a = β/(α+β), b = α/(α+β), G = (α A / (β B))^(1/(α+β))."""
    if not (math.isfinite(budget) and budget > 0):
        raise ValueError(f"a compute budget must be a positive number of FLOPs, not {budget}")
    alpha, beta = fit3["alpha"], fit3["beta"]
    if not (alpha > 0 and beta > 0):
        raise ValueError(f"the fit has alpha = {alpha:g}, beta = {beta:g}: with an exponent at 0 the loss does not "
                         "fall with N or D and there is no compute-optimal split")
    g = (alpha * fit3["A"] / (beta * fit3["B"])) ** (1 / (alpha + beta))
    n = g * (budget / 6) ** (beta / (alpha + beta))
    d = (budget / 6) ** (alpha / (alpha + beta)) / g
    method = ("The N, D minimising the approach-3 law under C = 6·N·D (Hoffmann et al. 2022, eq. 4): "
              "N* = G(C/6)^(beta/(alpha+beta)), D* = G^-1 (C/6)^(alpha/(alpha+beta)), "
              "G = (alpha·A/(beta·B))^(1/(alpha+beta)). N counts non-embedding parameters, so 6·N·D leaves out the "
              "output head's and attention's FLOPs, which a run's own C counts: at a small width (the output head's "
              "6·V·d near 6N) a run of N* parameters on D* tokens costs several times C; at GPT-2 small (N 85M) 1.7 times, "
              "nearer 1 in larger models. Approach 2's N_opt(C) is in the runs' own accounting.")
    return {"method": method, "c": float(budget), "n": float(n), "d": float(d),
            "tokens_per_parameter": float(d / n), "loss": predict(fit3, n, d)}


# ---------------------------------------------------------------------------------------------------- validation


def validate(points: Sequence[Point], holdout: int = 1, **fit_options) -> dict:
    """The `holdout` budgets of largest compute (runs grouped as in approach 2) left out of an approach-3 fit on
    the rest, and their loss predicted: error = predicted − loss, relative_error = error / loss. `fit_options` go
    to fit_approach3 (bootstrap defaults to 0 here: the held-out error is the point)."""
    if holdout < 1:
        raise ValueError(f"holdout must be 1 or more budgets, not {holdout}")
    kept, excluded = _usable(points)
    groups = group_budgets(kept)
    if len(groups) <= holdout:
        raise ValueError(f"validation holds out the {holdout} largest compute budget(s) and the runs have "
                         f"{len(groups)}: nothing would be left to fit")
    train = [p for group in groups[:-holdout] for p in group]
    held = [p for group in groups[-holdout:] for p in group]
    fit_options.setdefault("bootstrap", 0)
    try:
        fit = fit_approach3(train, **fit_options)
    except ValueError as error:
        raise ValueError(f"validation (the {holdout} largest budget(s) held out): {error}") from None
    rows = []
    for p in held:
        predicted = predict(fit, p.n, p.d)
        rows.append({"name": p.name, "n": p.n, "d": p.d, "c": p.c, "loss": p.loss, "predicted": predicted,
                     "error": predicted - p.loss, "relative_error": (predicted - p.loss) / p.loss})
    method = (f"The {holdout} largest compute budget(s) ({len(held)} runs, C >= {held[0].c:.3g} FLOPs) held out; "
              f"approach 3 fitted on the other {len(train)} runs as above (no bootstrap unless asked); the held-out "
              "losses predicted from that fit: error = predicted - measured, relative error = error / measured."
              + _excluded_sentence(excluded))
    return {"method": method, "held_out": rows,
            "mean_absolute_relative_error": float(np.mean([abs(r["relative_error"]) for r in rows])),
            "fit": {key: fit[key] for key in ("E", "A", "B", "alpha", "beta")},
            "train_runs": len(train), "excluded": excluded}
