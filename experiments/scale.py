"""`mdr scale`: how loss falls with model size N and training tokens D on one's own shards, what the fits say, and
what they predict (issue 13).

    mdr scale --data SHARDS --out DIR --sizes 2x64,4x128,... (--tokens 300k,1M,... | --flops 1e12,3e12,...)
              [--budget C ...] [--preset tiny] [--head-size H] [--batch-size B] [--seq-len L] [--lr LR] ...

1. The documents of SHARDS are split once, by a hash of their text (train/data.py's in_val_split, so identical
   texts fall on one side), into DIR/data/train.parquet and DIR/data/heldout.parquet: one held-out set for every
   run. One tokenizer is fitted on the training documents (DIR/tokenizer.json) and every run uses it; the training
   documents are tokenized once with it (DIR/data/train-tokens/, `mdr tokenize`'s token files), and every run
   trains from those token files instead of tokenizing the documents again in its loader, every epoch.
2. The grid: every size (`LxD` = L layers of width D, heads D / --head-size, or `LxDxH`) with every --tokens count
   (steps = tokens / (batch × context), rounded up); or IsoFLOP, every size at every --flops budget C with the steps
   whose compute is nearest C (Hoffmann et al. 2022, §3.2). A run's compute is its trained tokens × its FLOPs per
   token (train/model.py shape_counts: 6·(N + the output head) + the attention term); an IsoFLOP run whose
   compute would miss its budget by more than BUDGET_SLACK (too few steps to round well), or that would train no
   step, is left out and listed under "skipped".
3. Each run is `mdr train` with its own cosine schedule as long as its own steps (Hoffmann et al. 2022, §3 and
   App. B: Kaplan et al.'s runs decayed every model over one fixed schedule and so overestimated the loss of
   short runs, which biased the compute-optimal split towards large models), then its final loss (nats per token)
   and bits per byte over every held-out document. A run with a result.json is not trained again, and an
   interrupted one resumes from its last checkpoint. --parallel N trains N CPU runs side by side.
4. The fits of experiments/scaling_fit.py on the finished runs (approach 2, approach 3 with bootstrap intervals,
   validation on the largest budgets held out, the compute-optimal split at each --budget), written to
   DIR/scaling.json and drawn on DIR/scaling.html (experiments/scale_page.py). A fit the runs cannot support is
   {"error": sentence}, said on the page and in the table, not a failure of the sweep.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mdr.atomic import atomic_file, write_atomically
from mdr.errors import UsageError
from mdr.experiments import runner
from mdr.experiments.scale_page import flops, write_page
from mdr.experiments.scaling_fit import Point, compute_optimal, fit_approach2, fit_approach3, validate
from mdr.formatting import quantity
from mdr.layout import ScaleLayout, TrainLayout

# Half of scaling_fit.BUDGET_TOLERANCE: the runs of one budget then agree within it and fall in one IsoFLOP group.
BUDGET_SLACK = 0.005
CHECKPOINTS_PER_RUN = 10  # a killed run loses at most a tenth of its steps
HELDOUT = "heldout"
_SIZE = re.compile(r"(\d+)x(\d+)(?:x(\d+))?")
_COUNT = re.compile(r"(\d+(?:\.\d*)?(?:e\+?\d+)?)([kMGT]?)", re.IGNORECASE)
_PREFIX = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
# what decides a run besides its shape and steps: a result.json made with other values is another sweep's
_RUN_IDENTITY = ("data", "tokenizer", "preset", "n_layer", "n_head", "n_embd", "seq_len", "batch_size", "max_steps",
                 "seed", "lr", "extra")


@dataclass(frozen=True)
class Shape:
    n_layer: int
    n_embd: int
    n_head: int

    @property
    def label(self) -> str:
        return f"{self.n_layer}x{self.n_embd}x{self.n_head}"


def parse_sizes(text: str, head_size: int) -> list[Shape]:
    """--sizes: comma-separated `LxD` (heads D / head_size) or `LxDxH`."""
    shapes = []
    for item in (part.strip() for part in text.split(",")):
        match = _SIZE.fullmatch(item)
        if not match:
            raise UsageError(f"--sizes: {item!r} is not LAYERSxWIDTH or LAYERSxWIDTHxHEADS (e.g. 4x128 or 4x128x4)")
        layers, width = int(match[1]), int(match[2])
        if match[3] is None and width % head_size:
            raise UsageError(f"--sizes: width {width} of {item} is not a multiple of --head-size {head_size}: give "
                             "the heads as LxDxH")
        heads = int(match[3]) if match[3] is not None else width // head_size
        if min(layers, width, heads) < 1 or width % heads:
            raise UsageError(f"--sizes: {item} needs at least one layer and one head, and a width that is a multiple "
                             "of its heads")
        shapes.append(Shape(layers, width, heads))
    if len(set(shapes)) != len(shapes):
        raise UsageError("--sizes: each size once")
    return shapes


def parse_counts(text: str, flag: str) -> list[float]:
    """--tokens 300k,1M or --flops 1e12,3e12: positive numbers, SI prefixes k M G T allowed."""
    values = []
    for item in (part.strip() for part in text.split(",")):
        match = _COUNT.fullmatch(item)
        value = float(match[1]) * _PREFIX[match[2].lower()] if match else math.nan
        if not (math.isfinite(value) and value > 0):
            raise UsageError(f"{flag}: {item!r} is not a positive number (e.g. 300k, 1.5M, 2e12)")
        values.append(value)
    if len(set(values)) != len(values):
        raise UsageError(f"{flag}: each value once")
    return sorted(values)


@dataclass(frozen=True)
class ScaleConfig:
    data: list[str]  # Parquet shards, as `mdr train --data` takes them
    out: str
    sizes: list[Shape]
    tokens: list[float] | None = None  # grid mode: every size at every token count
    flops: list[float] | None = None  # IsoFLOP mode: every size at every compute budget
    budgets: list[float] = field(default_factory=list)  # --budget: compute-optimal N*, D* predicted at each
    preset: str = "tiny"  # the base of every shape: context, tokenizer size, learning rate
    batch_size: int = 12
    seq_len: int | None = None
    tokenizer_vocab_size: int | None = None
    lr: float | None = None
    seed: int = 0
    heldout_fraction: float = 0.05
    holdout_budgets: int = 1  # the largest budgets left out of validation's fit and predicted (0: no validation)
    bootstrap: int = 200  # resamples for approach 3's intervals (Besiroglu et al. 2024)
    device: str = "cpu"
    parallel: int = 1
    progress: bool = True


@dataclass(frozen=True)
class PlannedRun:
    name: str
    shape: Shape
    steps: int
    counts: dict  # shape_counts: n, n_total, flops_per_token
    budget: float | None  # the --flops budget it was planned for (IsoFLOP)

    @property
    def tokens(self) -> int:
        return self.steps * self.counts["tokens_per_step"]

    @property
    def compute(self) -> float:
        return self.tokens * self.counts["flops_per_token"]


def check_config(config: ScaleConfig) -> list[str]:
    """Everything that can be checked before anything is written; returns the shards' files."""
    from mdr.train.model import PRESETS
    from mdr.train.tokenizer import open_text_parquet, resolve_parquet_files

    if (config.tokens is None) == (config.flops is None):
        raise UsageError("give --tokens (a grid of sizes × token counts) or --flops (IsoFLOP: sizes at each compute "
                         "budget), one of the two")
    if config.preset not in PRESETS:
        raise UsageError(f"unknown preset {config.preset!r}; choose one of {', '.join(PRESETS)}")
    if not config.sizes:
        raise UsageError("--sizes: give at least one size")
    if config.flops is not None and len(config.sizes) < 3:
        raise UsageError(f"--flops fits a parabola in N at each budget, which needs 3 or more --sizes, not "
                         f"{len(config.sizes)}")
    for name in ("batch_size", "seq_len", "tokenizer_vocab_size"):
        value = getattr(config, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if not 0.0 < config.heldout_fraction < 1.0:
        raise UsageError(f"--heldout-fraction must be in (0, 1), got {config.heldout_fraction}")
    if config.holdout_budgets < 0 or config.bootstrap < 0:
        raise UsageError("--holdout-budgets and --bootstrap must be 0 or more")
    if config.lr is not None and not (math.isfinite(config.lr) and config.lr > 0):
        raise UsageError(f"--lr must be a positive number, got {config.lr}")
    for budget in config.budgets:
        if not (math.isfinite(budget) and budget > 0):
            raise UsageError(f"--budget must be a positive number of FLOPs, got {budget}")
    runner.check_parallel(config.parallel, config.device)
    files = resolve_parquet_files(config.data)
    for path in files:  # each a Parquet file with a text column, before anything is written
        open_text_parquet(path)
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a directory")
    return files


def plan_runs(config: ScaleConfig, vocab_size: int) -> tuple[list[PlannedRun], list[dict]]:
    """The runs of the grid (module docstring, 2) for a tokenizer of `vocab_size` tokens, and the IsoFLOP runs left
    out with the reason. Runs are ordered by compute, smallest first."""
    from mdr.train.model import PRESETS, config_for, shape_counts

    seq_len = config.seq_len or PRESETS[config.preset].block_size
    tokens_per_step = config.batch_size * seq_len
    runs, skipped = [], []
    for shape in config.sizes:
        model_config = config_for(config.preset, vocab_size, seq_len, shape.n_layer, shape.n_head, shape.n_embd)
        counts = {**shape_counts(model_config), "tokens_per_step": tokens_per_step}
        if config.tokens is not None:
            for tokens in config.tokens:
                steps = math.ceil(tokens / tokens_per_step)
                runs.append(PlannedRun(f"{shape.label}-d{steps * tokens_per_step}", shape, steps, counts, None))
            continue
        for budget in config.flops:
            steps = round(budget / (counts["flops_per_token"] * tokens_per_step))
            run = PlannedRun(f"c{flops(budget)}-{shape.label}", shape, steps, counts, budget)
            miss = abs(run.compute - budget) / budget
            if steps < 1 or miss > BUDGET_SLACK:
                skipped.append({"name": run.name, "budget": budget, "n": counts["n"], "steps": steps,
                                "reason": f"{steps} step(s) of {tokens_per_step} tokens at "
                                          f"{counts['flops_per_token']:,} FLOPs per token come to "
                                          f"{flops(run.compute)} FLOPs, {miss:.1%} from the budget (at most "
                                          f"{BUDGET_SLACK:.1%}): a larger budget or a smaller --batch-size"})
            else:
                runs.append(run)
    return sorted(runs, key=lambda run: (run.compute, run.counts["n"])), skipped


def _split(files: list[str], layout: ScaleLayout, fraction: float, progress: bool) -> dict:
    """DIR/data/train.parquet and heldout.parquet from the shards (module docstring, 1), streamed batch by batch;
    returns the documents on each side and the sha256 of both sides' texts in order, which identifies the split."""
    from mdr.train.data import in_val_split
    from mdr.train.tokenizer import iter_texts

    created = [folder for folder in (layout.root, layout.train_data.parent) if not folder.exists()]
    layout.train_data.parent.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([("text", pa.string())])
    digest = hashlib.sha256()
    counts = {"train": 0, HELDOUT: 0}
    with atomic_file(layout.train_data) as train_file, atomic_file(layout.heldout_data) as heldout_file, \
            pq.ParquetWriter(train_file, schema) as train, pq.ParquetWriter(heldout_file, schema) as heldout:
        for batch in iter_texts(files):
            sides = {"train": [], HELDOUT: []}
            for text in batch:
                side = HELDOUT if in_val_split(text, fraction) else "train"
                sides[side].append(text)
                digest.update(f"{side}:{len(text)}:".encode() + text.encode("utf-8"))
            for side, writer in (("train", train), (HELDOUT, heldout)):
                if sides[side]:
                    writer.write_table(pa.table({"text": sides[side]}, schema=schema))
                    counts[side] += len(sides[side])
    runner.note(f"mdr: scale: {counts['train']} training and {counts[HELDOUT]} held-out documents -> "
                f"{layout.train_data.parent}", progress)
    if not counts["train"] or not counts[HELDOUT]:  # known only once read: what this call wrote goes again
        layout.train_data.unlink()
        layout.heldout_data.unlink()
        for folder in reversed(created):
            folder.rmdir()
        raise UsageError(f"the data holds {counts['train'] + counts[HELDOUT]} document(s), {counts[HELDOUT]} held "
                         f"out by --heldout-fraction {fraction}: each side needs at least one (give more data or "
                         "another fraction)")
    return {"train_documents": counts["train"], "heldout_documents": counts[HELDOUT], "sha256": digest.hexdigest()}


def _fit_tokenizer(config: ScaleConfig, layout: ScaleLayout, split_sha256: str):
    """The tokenizer of every run, fitted on the training documents once; kept on a rerun of the same split and
    vocabulary (DIR/tokenizer.settings.json says what it was fitted on)."""
    from mdr.train.tokenizer import load_tokenizer, train_tokenizer
    from mdr.train.trainer import TOKENIZER_VOCAB_SIZE

    settings = {"vocab_size": config.tokenizer_vocab_size or TOKENIZER_VOCAB_SIZE[config.preset],
                "split_sha256": split_sha256}
    fitted = layout.tokenizer.is_file() and layout.tokenizer_settings.is_file() and json.loads(
        layout.tokenizer_settings.read_text()) == settings
    if not fitted:
        train_tokenizer([str(layout.train_data)], settings["vocab_size"], str(layout.tokenizer))
        write_atomically(layout.tokenizer_settings, json.dumps(settings) + "\n")
    return load_tokenizer(str(layout.tokenizer))


def _train_config(config: ScaleConfig, layout: ScaleLayout, run: PlannedRun, split_sha256: str,
                  tokenizer_sha256: str):
    from mdr.train.trainer import TrainConfig

    options = {"lr": config.lr} if config.lr is not None else {}
    interval = max(1, run.steps // CHECKPOINTS_PER_RUN)
    # val_fraction 0 and no eval sets: the held-out set is DIR/data/heldout.parquet, evaluated whole at the end
    return TrainConfig(data=[str(layout.train_tokens)], out=str(layout.run(run.name)), tokenizer=str(layout.tokenizer),
                       preset=config.preset, n_layer=run.shape.n_layer, n_head=run.shape.n_head,
                       n_embd=run.shape.n_embd, seq_len=config.seq_len, batch_size=config.batch_size,
                       max_steps=run.steps, seed=config.seed, val_fraction=0.0, eval_interval=run.steps,
                       checkpoint_interval=interval, log_interval=max(1, run.steps // 100), device=config.device,
                       progress=config.progress, resume="auto",
                       extra={"split_sha256": split_sha256, "tokenizer_sha256": tokenizer_sha256}, **options)


def _identity(train_config: dict) -> dict:
    return {key: train_config.get(key) for key in _RUN_IDENTITY}


def _train_and_evaluate(layout: ScaleLayout, train_config, run: PlannedRun, train_tokens: int, device: str) -> None:
    """Trains one run, evaluates it on every held-out document and writes its result.json (module docstring, 3)."""
    from mdr.train.checkpointing import load_model
    from mdr.train.trainer import train

    train(train_config)
    trained = TrainLayout(train_config.out)
    model, _ = load_model(trained.root, device)
    metrics = runner.evaluate_file(model, trained.tokenizer, layout.heldout_data, train_config.batch_size, device,
                                   train_config.seed)
    finite = math.isfinite(metrics["nll"])
    result = {"name": run.name, "n_layer": run.shape.n_layer, "n_head": run.shape.n_head,
              "n_embd": run.shape.n_embd, "seq_len": model.config.block_size, **run.counts, "steps": run.steps,
              "tokens": run.tokens, "c": run.compute, "budget": run.budget, "epochs": run.tokens / train_tokens,
              "loss": metrics["nll"] if finite else None, "bpb": metrics["bpb"] if finite else None,
              "metrics": metrics if finite else None, "train_config": dataclasses.asdict(train_config)}
    write_atomically(layout.result(run.name), json.dumps(result, indent=2, allow_nan=False) + "\n")


def _fits(config: ScaleConfig, rows: list[dict]) -> tuple[dict, list[dict]]:
    """scaling_fit's fits of the finished runs; a fit the runs cannot support is {"error": its sentence}."""
    points = [Point(row["n"], row["tokens"], row["c"], row["loss"] if row["loss"] is not None else math.nan,
                    row["name"]) for row in rows]
    fits: dict = {}
    try:
        fits["approach2"] = fit_approach2(points)
    except ValueError as error:
        fits["approach2"] = {"error": str(error)}
    try:
        fits["approach3"] = fit_approach3(points, bootstrap=config.bootstrap, seed=config.seed)
    except ValueError as error:
        fits["approach3"] = {"error": str(error)}
    if config.holdout_budgets:
        try:
            fits["validation"] = validate(points, config.holdout_budgets)
        except ValueError as error:
            fits["validation"] = {"error": str(error)}
    optimal = []
    two = fits["approach2"]
    if "error" not in fits["approach3"]:
        for budget in config.budgets:
            try:
                row = compute_optimal(fits["approach3"], budget)
            except ValueError as error:
                row = {"c": budget, "error": str(error)}
            if "error" not in two and two["a"] is not None:  # the IsoFLOP power laws, in the runs' own C
                row["approach2"] = {"n": two["n_coefficient"] * budget ** two["a"],
                                    "d": two["d_coefficient"] * budget ** two["b"]}
            optimal.append(row)
    return fits, optimal


def scale(config: ScaleConfig) -> dict:
    """Runs the sweep (module docstring); returns what scaling.json holds."""
    from mdr.train.model import padded_vocab_size
    from mdr.train.trainer import TOKENIZER_VOCAB_SIZE

    files = check_config(config)
    planned_vocab = padded_vocab_size(config.tokenizer_vocab_size or TOKENIZER_VOCAB_SIZE[config.preset])
    runs, _ = plan_runs(config, planned_vocab)
    if not runs:  # checked with the vocabulary asked for, before anything is written
        raise UsageError("no run of the grid meets its budget: give larger --flops budgets or a smaller --batch-size")
    layout = ScaleLayout(Path(config.out))
    split = _split(files, layout, config.heldout_fraction, config.progress)
    tokenizer = _fit_tokenizer(config, layout, split["sha256"])
    runs, skipped = plan_runs(config, tokenizer.vocab_size)  # the fitted tokenizer's vocabulary decides N and C
    train_configs = {run.name: _train_config(config, layout, run, split["sha256"], tokenizer.sha256)
                     for run in runs}
    runner.check_earlier_results({run.name: layout.result(run.name) for run in runs}, train_configs, _identity,
                                 layout.root, lambda name: name)
    # tokenized once for every run; the manifest counts the tokens the loader makes of the documents (each
    # document's and its end-of-document token), the epochs' denominator
    train_tokens = runner.tokenize_once([layout.train_data], layout.tokenizer, layout.train_tokens,
                                        config.progress)["tokens"]
    pending = {run.name: (layout, train_configs[run.name], run, train_tokens, config.device)
               for run in runs if not layout.result(run.name).is_file()}
    runner.note(f"mdr: scale: {len(runs)} runs ({len(runs) - len(pending)} finished before), {len(skipped)} left "
                f"out, on {quantity(train_tokens)} training tokens", config.progress)
    if config.parallel > 1:  # one line per finished run instead of N interleaved progress lines
        pending = {name: (layout, dataclasses.replace(arguments[1], progress=False), *arguments[2:])
                   for name, arguments in pending.items()}
    runner.run_pending(_train_and_evaluate, pending, config.parallel,
                       lambda name, finished: runner.note(f"mdr: scale: {name} done ({finished}/{len(pending)})",
                                                          config.progress))
    rows = [{key: value for key, value in json.loads(layout.result(run.name).read_text()).items()
             if key not in ("train_config", "metrics")} for run in runs]
    fits, optimal = _fits(config, rows)
    scaling = {
        "data": ", ".join(config.data),
        "grid": {"mode": "isoflop" if config.flops is not None else "grid",
                 "sizes": [shape.label for shape in config.sizes],
                 **({"flops": config.flops} if config.flops is not None else {"tokens": config.tokens})},
        "split": {**split, "heldout_fraction": config.heldout_fraction, "train_tokens": train_tokens},
        "tokenizer": {"path": str(layout.tokenizer), "sha256": tokenizer.sha256, "vocab_size": tokenizer.vocab_size},
        "runs": rows,
        "skipped": skipped,
        "fits": fits,
        "optimal": optimal,
        "configuration": {**dataclasses.asdict(config), "sizes": [shape.label for shape in config.sizes]},
    }
    write_atomically(layout.scaling_file, json.dumps(scaling, indent=2, allow_nan=False) + "\n")
    write_page(layout.page, scaling)
    return scaling


def format_table(scaling: dict) -> str:
    """The terminal's view of scaling.json: the runs, each fit's numbers (or why it failed), the held-out budgets'
    prediction errors and the compute-optimal split at each --budget."""
    lines = [f"{'run':<24} {'N':>7} {'N total':>8} {'tokens':>8} {'C (FLOPs)':>10} {'epochs':>6} {'loss':>7} "
             f"{'bpb':>6}"]
    for run in scaling["runs"]:
        loss = f"{run['loss']:7.4f}" if run["loss"] is not None else f"{'-':>7}"
        bpb = f"{run['bpb']:6.3f}" if run["bpb"] is not None else f"{'-':>6}"
        lines.append(f"{run['name']:<24} {quantity(run['n']):>7} {quantity(run['n_total']):>8} "
                     f"{quantity(run['tokens']):>8} {flops(run['c']):>10} {run['epochs']:6.2f} {loss} {bpb}")
    for row in scaling["skipped"]:
        lines.append(f"left out: {row['name']}: {row['reason']}")
    fits = scaling["fits"]
    two = fits["approach2"]
    lines.append("")
    if "error" in two:
        lines.append(f"approach 2: {two['error']}")
    elif two["a"] is None:
        lines.append(f"approach 2: {len(two['budgets'])} budget(s) with a usable parabola; N_opt ∝ C^a needs 2")
    else:
        outside = sum(row["extrapolated"] for row in two["budgets"])
        lines.append(f"approach 2: N_opt ∝ C^{two['a']:.3f}, D_opt ∝ C^{two['b']:.3f} "
                     f"({len(two['budgets'])} budgets)" + (
                         f"; {outside} budget(s) have their minimum outside the sizes trained (extrapolated: "
                         "train smaller or larger sizes there)" if outside else ""))
    three = fits["approach3"]
    if "error" in three:
        lines.append(f"approach 3: {three['error']}")
    else:
        intervals = three["intervals"] or {}

        def value(key: str, form: str) -> str:
            low_high = intervals.get(key)
            return format(three[key], form) + (f" [{low_high[0]:{form}}, {low_high[1]:{form}}]" if low_high else "")

        lines.append(f"approach 3: L = E + A/N^alpha + B/D^beta, E {value('E', '.3f')}, A {value('A', '.4g')}, "
                     f"B {value('B', '.4g')}, alpha {value('alpha', '.3f')}, beta {value('beta', '.3f')}"
                     + (f" (95% bootstrap, {three['bootstrap']} resamples)" if intervals else ""))
    validation = fits.get("validation")
    if validation is not None:
        if "error" in validation:
            lines.append(f"validation: {validation['error']}")
        else:
            lines.append(f"validation: fitted on {validation['train_runs']} runs, the largest budget(s) held out, "
                         f"mean |relative error| {validation['mean_absolute_relative_error']:.2%}")
            for row in validation["held_out"]:
                lines.append(f"  {row['name']:<24} loss {row['loss']:.4f}, predicted {row['predicted']:.4f} "
                             f"({row['relative_error']:+.2%})")
    for row in scaling["optimal"]:
        if "error" in row:
            lines.append(f"--budget {flops(row['c'])}: {row['error']}")
        else:
            lines.append(f"--budget {flops(row['c'])}: approach 3 N* {quantity(row['n'])}, D* {quantity(row['d'])} "
                         f"({row['tokens_per_parameter']:.3g} tokens per parameter), predicted loss {row['loss']:.4f}"
                         + (f"; approach 2 N_opt {quantity(row['approach2']['n'])}, D_opt "
                            f"{quantity(row['approach2']['d'])}" if "approach2" in row else ""))
    return "\n".join(lines)
