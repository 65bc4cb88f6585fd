"""`mdr ablate --run OUT` (issue 12.2): the same small model trained on each arm, the documents a tapped stage of run
OUT forwarded, at the same number of tokens, with the same tokenizer, model, optimizer and schedule, and compared on
common held-out sets. `mdr ablate --input WARCS --recipe RECIPE --arms A,B,...` curates that run first, into DIR/run
with a tap at every arm (experiments/curate.py), and goes on as `--run DIR/run`.

The steps, in order, each written under DIR (`AblationLayout`):
1. the arms (`--arms`, default every tap of OUT in recipe order), their held-out split (`heldout.split_heldout`) and
   decontamination against heldout-first and every --eval set (`heldout.decontaminate`): arms/<arm>/train.parquet
   and eval/<set>.parquet;
2. one tokenizer, fitted once on a pooled sample with an equal number of documents from every arm, so that no arm
   gets a vocabulary of its own (tokenizer.json); each arm's training documents tokenized once with it
   (arms/<arm>/tokens/, `mdr tokenize`'s token files), which every seed's run trains from;
3. per arm and seed, a training run of `tokens // (batch_size × seq_len)` steps (every arm sees the same number of
   tokens; an arm with fewer repeats its documents, and its epochs are reported), then bits per byte on every
   evaluation set: runs/<arm>/seed<k>/result.json, written last and atomically, so that a run with one is skipped
   when the command runs again; with --parallel N, N runs at a time, each in a process of its own;
4. ablation.json and the table: mean ± std over seeds, and each arm's difference to the first arm with its 95%
   interval (`statistics.compare_arms`); ablation.html, the same with learning curves and error bars (`page`).

Multiple-choice tasks (`--task NAME=FILE.jsonl`, and `--continuation Q`: Q questions built from heldout-last
documents into eval/continuation.jsonl) are scored in every run after its training (train/tasks.py), compared on
acc_norm, where higher is better. A task changes no training: a finished run lacking a task's score, or holding one
of other questions, is scored from its checkpoint on a rerun, not trained again.

A mistaken request (an arm that is no tap, an eval set that cannot be read, a budget under one step, a DIR holding
runs of another configuration) is a UsageError before anything is written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from mdr.atomic import write_atomically
from mdr.errors import UsageError
from mdr.experiments import runner
from mdr.experiments.heldout import Doc, decontaminate, load_eval_set, split_heldout
from mdr.experiments.page import write_page
from mdr.experiments.statistics import compare_arms
from mdr.layout import AblationLayout, RunLayout, TrainLayout, tap_folders

HELDOUT_FIRST, HELDOUT_LAST = "heldout-first", "heldout-last"
CONTINUATION = "continuation"  # the task --continuation builds
# Documents per arm in the tokenizer's pooled sample, at most: the tokenizer is fitted once, on the same number of
# documents from every arm (the smallest arm's count when it has fewer), so that no arm's text dominates it.
TOKENIZER_DOCS_PER_ARM = 20_000
# Points of each learning curve (bits per byte of the held-out sets against trained tokens, result.json "curves"):
# the trainer evaluates every max_steps // CURVE_POINTS steps and at the last, enough to show a curve's shape and
# where arms part; the final values of the table evaluate the whole of every set after training, not a curve point.
CURVE_POINTS = 10
# The curves are drawn on the held-out sets (issue 12: "held-out bpb against tokens"), not on the --eval sets, which
# have final values only: each set evaluated at every point costs as much again.
CURVE_SETS = (HELDOUT_FIRST, HELDOUT_LAST)
# A curve point evaluates the first eval_batches batches of each curve set, sized so that the curves cost about
# CURVE_BUDGET of the training (one batch per point at least, which costs more on a budget of few steps): an
# evaluation batch costs EVAL_BATCH_COST training steps, measured 0.26-0.28 (a forward pass without gradients
# against forward, backward and AdamW; tiny preset, one CPU thread, batches of 12 × 128 and 4 × 32 tokens). A run of
# 150 steps of 12 × 128 with 3 sets (a batch per point, 30 in all) took 32.6 s with its curves, 33.0 s without.
# At 0.1 (one batch a point on benchmarks/bench_ablation.py's budget) the curves were a few documents' worth and
# ordered the arms unlike the final values of the same sets; at 0.3 a point reads 11 batches there (RESULTS.md,
# "Does curation help?"). The eval sets are written in a seeded random order of their documents (_write_eval_set),
# so that those first batches are a sample of the whole set, not its first documents.
CURVE_BUDGET = 0.3
EVAL_BATCH_COST = 0.3
# The settings of a run that make it the same run: a result.json written under others is another ablation's.
_RUN_IDENTITY = ("data", "tokenizer", "preset", "seq_len", "batch_size", "max_steps", "seed", "val_fraction",
                 "tokenizer_vocab_size")


@dataclass
class AblateConfig:
    run: str | None  # an `mdr run` output directory with taps; None with `input`
    out: str  # DIR
    tokens: int  # training tokens of every run
    arms: list[str] | None = None  # tapped stages, in recipe order; None: every tap
    seeds: int = 3
    evals: dict[str, str] = field(default_factory=dict)  # --eval NAME=PATH
    heldout_fraction: float = 0.05
    preset: str = "tiny"
    batch_size: int = 12
    seq_len: int | None = None  # None: the preset's context
    tokenizer_vocab_size: int | None = None  # None: the trainer's default for the preset
    lr: float | None = None
    device: str = "cpu"
    progress: bool = True
    parallel: int = 1  # runs trained at a time, each in a process of its own (CPU only)
    task_files: dict[str, str] = field(default_factory=dict)  # --task NAME=FILE.jsonl, multiple choice
    continuation: int = 0  # --continuation Q: questions built from heldout-last documents; 0: none
    # Curation inside the ablation (experiments/curate.py), instead of `run`: these WARC/ARC/WET files or
    # directories, curated by `recipe` (a built-in name or a YAML path) into DIR/run with a tap at every arm, on
    # `workers` processes (None: the CPU count) in `tasks` tasks (None: mdr run's default)
    input: list[str] | None = None
    recipe: str | None = None
    workers: int | None = None
    tasks: int | None = None


@dataclass
class Request:
    """What `check_request` found, before any run is read."""

    evals: dict[str, list[str]]  # --eval name → texts
    seq_len: int
    max_steps: int


@dataclass
class Plan:
    """What the checks of the request found, before anything is written."""

    arms: dict[str, list[Doc]]  # arm → its documents, in recipe order
    evals: dict[str, list[str]]  # --eval name → texts
    seq_len: int
    max_steps: int


def parse_eval(text: str) -> tuple[str, str]:
    """`--eval NAME=PATH` → (name, path): `mdr train --eval`'s rule, and not one of the held-out sets' names."""
    from mdr.train.cli import parse_named_path  # the CLI module alone: no torch

    name, path = parse_named_path(text, "--eval")
    if name in (HELDOUT_FIRST, HELDOUT_LAST):
        raise UsageError(f"--eval {text}: {HELDOUT_FIRST} and {HELDOUT_LAST} are the ablation's own held-out sets: "
                         "choose another name")
    return name, path


def parse_task(text: str) -> tuple[str, str]:
    """`--task NAME=FILE.jsonl` → (name, path), named as an --eval set is (`mdr train --eval`'s rule)."""
    from mdr.train.cli import parse_named_path  # the CLI module alone: no torch

    return parse_named_path(text, "--task")


def _read_tasks(config: AblateConfig) -> dict:
    """The --task files' questions, every line checked (train/tasks.py read_task), before anything is written. A
    task's name is no eval set's: the table's rows and result.json name both by it."""
    from mdr.train.tasks import read_task

    if config.continuation < 0:
        raise UsageError(f"--continuation must be at least 0, got {config.continuation}")
    taken = {HELDOUT_FIRST, HELDOUT_LAST, *config.evals}
    names = [*config.task_files, *([CONTINUATION] if config.continuation else [])]
    for name in names:
        if name in taken:
            raise UsageError(f"--task {name}: an evaluation set has that name: give the task another")
    if config.continuation and CONTINUATION in config.task_files:
        raise UsageError(f"--task {CONTINUATION}: --continuation's task has that name: give the task another")
    return {name: read_task(path) for name, path in config.task_files.items()}


def _continuation_rows(texts: list[str], count: int, seq_len: int) -> list[dict]:
    """`count` questions of train/tasks.py's continuation task built from `texts` (heldout-last), a seeded sample
    of the documents long enough, in their order. A continuation of at most half the context in characters: a
    byte-level BPE token holds one byte or more and web text is nearly all one-byte characters, so every choice fits
    the model's context (the scorer cuts the context from the left, not the choice)."""
    from mdr.train.tasks import CONTINUATION_CHARS, continuation_task

    try:
        rows = continuation_task(texts, continuation_chars=max(1, min(CONTINUATION_CHARS, seq_len // 2)))
    except ValueError as error:
        raise UsageError(f"--continuation {count}: heldout-last is too small for the task: {error}") from None
    if len(rows) < count:
        raise UsageError(f"--continuation {count}: heldout-last has {len(rows)} documents long enough for a "
                         f"question: ask for at most {len(rows)}, or give more documents")
    return [rows[i] for i in sorted(random.Random(CONTINUATION).sample(range(len(rows)), count))]


def _check_tasks_fit(tokenizer, tasks: dict, seq_len: int) -> None:
    """Every choice of every task has tokens of its own that fit the model's context (what evaluate_task checks
    once a model is trained), checked before any training."""
    from mdr.train.tasks import encode_pair

    for name, questions in tasks.items():
        for question in questions:
            for index, choice in enumerate(question.choices):
                tokens = len(encode_pair(tokenizer, question.context, choice)[1])
                if not 1 <= tokens <= seq_len:
                    raise UsageError(f"task {name}, {question.where}: choice {index} is {tokens} tokens, not 1 to "
                                     f"the model's context of {seq_len}")


def _questions_sha256(questions: list) -> str:
    return hashlib.sha256(json.dumps([[q.context, q.choices, q.label] for q in questions]).encode()).hexdigest()


def check_request(config: AblateConfig) -> Request:
    """Checks what the request asks besides the arms' documents: where they come from (--run or --input, not both),
    the model, the budget, and the --eval sets, which it reads. Needs no run and writes nothing, so that `mdr ablate
    --input` finds these mistakes before it curates."""
    from mdr.train.model import PRESETS

    if config.run is not None and config.input is not None:
        raise UsageError("give --run OUT or --input WARCS, not both: --input curates the run itself, into "
                         f"{AblationLayout(Path(config.out)).curation}")
    if config.run is None and config.input is None:
        raise UsageError("give --run OUT (an `mdr run` with taps) or --input WARCS --recipe RECIPE (curated into "
                         f"{AblationLayout(Path(config.out)).curation})")
    if config.input is not None and config.recipe is None:
        raise UsageError("--input needs --recipe RECIPE: a built-in recipe (refinedweb, fineweb) or a recipe YAML")
    curation_only = [flag for flag, value in (("--recipe", config.recipe), ("--workers", config.workers),
                                              ("--tasks", config.tasks)) if value is not None]
    if config.input is None and curation_only:
        raise UsageError(f"{', '.join(curation_only)}: only with --input (run {config.run} is curated already)")
    if config.preset not in PRESETS:
        raise UsageError(f"unknown preset {config.preset!r}; choose one of {', '.join(PRESETS)}")
    for name, value in (("--seeds", config.seeds), ("--batch-size", config.batch_size),
                        ("--seq-len", config.seq_len or 1)):
        if value < 1:
            raise UsageError(f"{name} must be at least 1, got {value}")
    seq_len = config.seq_len or PRESETS[config.preset].block_size
    max_steps = config.tokens // (config.batch_size * seq_len)
    if max_steps < 1:
        raise UsageError(f"--tokens {config.tokens} is less than one step of {config.batch_size} × {seq_len} tokens")
    evals = {name: load_eval_set(path) for name, path in config.evals.items()}
    return Request(evals=evals, seq_len=seq_len, max_steps=max_steps)


def plan(config: AblateConfig, request: Request | None = None) -> Plan:
    """Checks the request (`check_request`, unless given what it found) and the run, and reads the arms and eval
    sets; writes nothing."""
    request = request or check_request(config)
    try:
        taps = tap_folders(RunLayout(Path(config.run)))
    except FileNotFoundError:
        raise UsageError(f"{config.run} is not an `mdr run` output directory: it has no "
                         f"{RunLayout(Path(config.run)).run_file.name}") from None
    if not taps:
        raise UsageError(f"{config.run} has no taps: run `mdr run ... --tap STAGE` for every stage to compare")
    from mdr.pipeline.stats import funnel

    progress = funnel(config.run)
    if not progress["complete"]:  # a tap's shards appear task by task: a killed run's taps lack the rest
        raise UsageError(f"{config.run} is an unfinished run ({progress['tasks_done']} of {progress['tasks']} tasks "
                         "done): run the same `mdr run` command again to finish it, then ablate")
    names = config.arms or list(taps)
    unknown = [name for name in names if name not in taps]
    if unknown or len(set(names)) != len(names) or len(names) < 2:
        raise UsageError(f"--arms {','.join(names)}: give two or more distinct tapped stages of {config.run} "
                         f"(its taps: {', '.join(taps)})")
    names = sorted(names, key=list(taps).index)  # in recipe order: the first arm, the baseline, is nearest the input
    return Plan(arms={name: _documents(taps[name]) for name in names}, evals=request.evals,
                seq_len=request.seq_len, max_steps=request.max_steps)


def _documents(folder: Path) -> list[Doc]:
    """(id, text) of every document in a tap's shards, in file order."""
    docs = []
    for path in sorted(folder.glob("*.parquet")):
        table = pq.read_table(path, columns=["id", "text"])
        docs.extend(zip(table["id"].to_pylist(), table["text"].to_pylist()))
    return docs


def ablate(config: AblateConfig) -> dict:
    """Runs the ablation (module docstring); returns what ablation.json holds."""
    runner.check_parallel(config.parallel, config.device)
    request = check_request(config)
    tasks = _read_tasks(config)
    if config.input is not None:  # curated first, into DIR/run, which the ablation then reads as --run
        from mdr.experiments.curate import curate

        config = curate(config)
    work = plan(config, request)
    layout = AblationLayout(Path(config.out))
    heldout = split_heldout(work.arms, config.heldout_fraction)
    first = [text for _, text in heldout.first]
    clean = decontaminate(heldout.training, {HELDOUT_FIRST: first, **work.evals})
    eval_texts = {HELDOUT_FIRST: first, HELDOUT_LAST: [text for _, text in heldout.last], **work.evals}
    runs = [(arm, seed) for arm in work.arms for seed in range(config.seeds)]
    train_configs = {run: _train_config(config, work, layout, *run, eval_sets=list(CURVE_SETS)) for run in runs}
    runner.check_earlier_results({run: layout.result(*run) for run in runs}, train_configs, _identity, layout.root,
                                 lambda run: f"{run[0]}, seed {run[1]},")
    empty = [arm for arm, docs in clean.training.items() if not docs]
    if empty or not heldout.last:
        raise UsageError(f"nothing left to {'train on in arm ' + ', '.join(empty) if empty else 'evaluate on'} "
                         "after the held-out split and decontamination: give more documents or a smaller "
                         "--heldout-fraction")
    continuation = (_continuation_rows(eval_texts[HELDOUT_LAST], config.continuation, work.seq_len)
                    if config.continuation else None)

    for arm, docs in clean.training.items():
        runner.write_texts(layout.arm_data(arm), [t for _, t in docs], [i for i, _ in docs])
    for name, texts in eval_texts.items():
        runner.write_eval_set(layout.eval_set(name), name, texts)
    if continuation is not None:  # rewritten only when other questions: a rerun finds the file as it was
        lines = "".join(json.dumps(row) + "\n" for row in continuation)
        if not layout.continuation_task.is_file() or layout.continuation_task.read_text() != lines:
            write_atomically(layout.continuation_task, lines)
        from mdr.train.tasks import read_task

        tasks[CONTINUATION] = read_task(layout.continuation_task)  # the questions scored are the file's
    tokenizer = _fit_tokenizer(config, layout, clean.training)
    _check_tasks_fit(tokenizer, tasks, work.seq_len)
    tokens_per_run = work.max_steps * config.batch_size * work.seq_len
    for name, texts in eval_texts.items():  # each set must fill one evaluation batch, checked before any training
        if _tokens(tokenizer, texts) < config.batch_size * work.seq_len + 1:
            raise UsageError(f"eval set {name} ({len(texts)} documents) holds fewer tokens than one batch of "
                             f"{config.batch_size} × {work.seq_len}: give more documents or a smaller --batch-size")
    # each arm tokenized once, for all its seeds; the manifest counts the tokens the loader makes of the arm (each
    # document's and its end-of-document token), the epochs' denominator
    arm_tokens = {arm: runner.tokenize_once([layout.arm_data(arm)], layout.tokenizer, layout.arm_tokens(arm),
                                            config.progress)["tokens"] for arm in clean.training}

    pending = {run: train_configs[run] for run in runs if not layout.result(*run).is_file()}
    _train_runs(config, layout, pending, list(eval_texts), arm_tokens, len(runs), tasks)
    for arm, seed in runs:  # a task added (or changed) since a run finished: scored, not trained again
        _score_tasks_of_finished_run(config, layout, arm, seed, tasks)
    results = {run: json.loads(layout.result(*run).read_text()) for run in runs}

    bpb = {arm: {name: {seed: results[arm, seed]["bpb"][name] for seed in range(config.seeds)}
                 for name in eval_texts} for arm in work.arms}
    summary = {
        "run": str(config.run),
        "arms": {arm: {"documents": len(work.arms[arm]), "heldout_removed": heldout.removed[arm],
                       "decontaminated": clean.per_arm[arm], "training_documents": len(clean.training[arm]),
                       "training_tokens": arm_tokens[arm], "epochs": tokens_per_run / arm_tokens[arm]}
                 for arm in work.arms},
        "eval_sets": {name: {"documents": len(texts), "path": config.evals.get(name)}
                      for name, texts in eval_texts.items()},
        "decontamination": clean.summary(),
        "tokenizer": {"path": str(layout.tokenizer), "sha256": results[runs[0]]["tokenizer_sha256"]},
        "runs": [results[run] for run in runs],
        "results": [dataclasses.asdict(result) for result in compare_arms(bpb)],
        "tasks": {name: {"questions": len(questions), "chance": results[runs[0]]["tasks"][name]["chance"],
                         "path": config.task_files.get(name, str(layout.continuation_task))}
                  for name, questions in tasks.items()},
        "task_results": _task_results(results, list(work.arms), list(tasks), config.seeds),
        "configuration": {**dataclasses.asdict(config), "seq_len": work.seq_len, "max_steps": work.max_steps,
                          "tokens_per_run": tokens_per_run},
        # what a curve point evaluates: the first `batches` batches of each set, every `interval` steps
        "curves": {"sets": list(CURVE_SETS), "interval": train_configs[runs[0]].eval_interval,
                   "batches": train_configs[runs[0]].eval_batches},
    }
    write_atomically(layout.ablation_file, json.dumps(summary, indent=2) + "\n")
    write_page(layout.page, summary)
    return summary


def _train_config(config: AblateConfig, work: Plan, layout: AblationLayout, arm: str, seed: int,
                  eval_sets: list[str]):
    from mdr.train.trainer import TrainConfig

    options = {"lr": config.lr} if config.lr is not None else {}
    if config.tokenizer_vocab_size is not None:
        options["tokenizer_vocab_size"] = config.tokenizer_vocab_size
    # val_fraction 0: the held-out sets are the ablation's own (eval/), evaluated for the learning curves at every
    # curve point (CURVE_POINTS), which changes no training; a checkpoint at each, which a rerun of an interrupted
    # ablation resumes (resume="auto"), so that a killed run loses at most a tenth of its steps
    interval = max(1, work.max_steps // CURVE_POINTS)
    points = -(-work.max_steps // interval)  # every interval-th step and the last
    batches = max(1, int(CURVE_BUDGET * work.max_steps / (EVAL_BATCH_COST * points * len(eval_sets))))
    # what decides the arm's documents besides the run's settings, in the manifest and checked on a rerun
    extra = {"run": str(Path(config.run).resolve()), "arms": list(work.arms),
             "heldout_fraction": config.heldout_fraction,
             "evals": {name: str(Path(path).resolve()) for name, path in config.evals.items()}}
    return TrainConfig(data=[str(layout.arm_tokens(arm))], extra=extra, out=str(layout.run(arm, seed)),
                       tokenizer=str(layout.tokenizer), preset=config.preset, seq_len=work.seq_len,
                       batch_size=config.batch_size, max_steps=work.max_steps, seed=seed, val_fraction=0.0,
                       eval_sets={name: [str(layout.eval_set(name))] for name in eval_sets}, eval_interval=interval,
                       eval_batches=batches, checkpoint_interval=interval, log_interval=max(1, work.max_steps // 100),
                       device=config.device, progress=config.progress, resume="auto", **options)


def _task_results(results: dict, arms: list[str], tasks: list[str], seeds: int) -> list[dict]:
    """Rows as "results" holds, for each arm and task, of acc_norm (row["metric"] names the key of its spread),
    where higher is better."""
    acc_norm = {arm: {name: {seed: results[arm, seed]["tasks"][name]["acc_norm"] for seed in range(seeds)}
                      for name in tasks} for arm in arms}
    rows = []
    for result in compare_arms(acc_norm, higher_is_better=True) if tasks else []:
        row = dataclasses.asdict(result)
        rows.append({"arm": row["arm"], "task": row["eval_set"], "metric": "acc_norm", "acc_norm": row["bpb"],
                     "difference": row["difference"]})
    return rows


def _train_runs(config: AblateConfig, layout: AblationLayout, pending: dict, eval_sets: list[str],
                arm_tokens: dict[str, int], total: int, tasks: dict) -> None:
    """Trains and evaluates the runs not yet finished (`pending`: (arm, seed) → TrainConfig), one after another or
    config.parallel at a time (runner.run_pending); each writes its own run directory and result.json."""
    quiet = config.parallel > 1  # one line per finished run instead of N interleaved progress lines
    work_config = dataclasses.replace(config, progress=False) if quiet else config
    arguments = {(arm, seed): (work_config, layout, dataclasses.replace(train_config, progress=False) if quiet
                               else train_config, arm, seed, eval_sets, arm_tokens[arm], tasks)
                 for (arm, seed), train_config in pending.items()}

    def done(key, finished: int) -> None:
        runner.note(f"mdr: ablate: {key[0]} seed {key[1]} done ({total - len(pending) + finished}/{total})",
                    config.progress and quiet)

    runner.run_pending(_train_and_evaluate, arguments, config.parallel, done)


def _identity(train_config: dict) -> dict:
    return {key: train_config.get(key) for key in _RUN_IDENTITY} | {"ablation": train_config["extra"]}


def _fit_tokenizer(config: AblateConfig, layout: AblationLayout, training: dict[str, list[Doc]]):
    """The tokenizer of every run: fitted on the same number of documents from each arm (a seeded sample), once."""
    from mdr.train.tokenizer import load_tokenizer, train_tokenizer
    from mdr.train.trainer import TOKENIZER_VOCAB_SIZE

    share = min(TOKENIZER_DOCS_PER_ARM, *(len(docs) for docs in training.values()))
    pooled = [text for arm, docs in training.items()
              for _, text in random.Random(f"tokenizer:{arm}").sample(docs, share)]
    fitted = layout.tokenizer.is_file() and layout.tokenizer_sample.is_file() and pq.read_table(
        layout.tokenizer_sample, columns=["text"])["text"].to_pylist() == pooled
    if not fitted:  # first, or an earlier invocation's arms held other documents (and no run had finished)
        runner.write_texts(layout.tokenizer_sample, pooled)
        train_tokenizer([str(layout.tokenizer_sample)],
                        config.tokenizer_vocab_size or TOKENIZER_VOCAB_SIZE[config.preset], str(layout.tokenizer))
    return load_tokenizer(str(layout.tokenizer))


def _tokens(tokenizer, texts: list[str]) -> int:
    """The tokens the loader makes of `texts` (it encodes with encode_batch too): each document's tokens and its
    end-of-document token, as a token directory's manifest counts them."""
    return sum(len(ids) + 1 for ids in tokenizer.encode_batch(texts))


def _scored_tasks(model, tokenizer_path: Path, tasks: dict) -> dict:
    """result.json's "tasks": per task, acc, acc_norm and chance (train/tasks.py evaluate_task), the number of
    questions and their hash, by which a rerun tells a task of other questions."""
    from mdr.train.tasks import evaluate_task
    from mdr.train.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(str(tokenizer_path))
    scored = {}
    for name, questions in tasks.items():
        score = evaluate_task(model, tokenizer, questions)
        scored[name] = {"acc": score["acc"], "acc_norm": score["acc_norm"], "chance": score["chance"],
                        "questions": score["n"], "sha256": _questions_sha256(questions)}
    return scored


def _score_tasks_of_finished_run(config: AblateConfig, layout: AblationLayout, arm: str, seed: int,
                                 tasks: dict) -> None:
    """Scores, from the run's checkpoint, the tasks a finished run's result.json lacks or holds for other
    questions, and adds them to it; leaves it untouched when it has them all (and keeps the scores of tasks not
    asked for this time)."""
    from mdr.train.checkpointing import load_model

    result = json.loads(layout.result(arm, seed).read_text())
    held = result.get("tasks", {})
    missing = {name: questions for name, questions in tasks.items()
               if held.get(name, {}).get("sha256") != _questions_sha256(questions)}
    if not missing:
        return
    run = TrainLayout(layout.run(arm, seed))
    result["tasks"] = {**held, **_scored_tasks(load_model(run.root, config.device)[0], run.tokenizer, missing)}
    write_atomically(layout.result(arm, seed), json.dumps(result, indent=2) + "\n")


def _train_and_evaluate(config: AblateConfig, layout: AblationLayout, train_config, arm: str, seed: int,
                        eval_sets: list[str], arm_tokens: int, tasks: dict) -> None:
    from mdr.train.checkpointing import load_model
    from mdr.train.trainer import train

    if config.progress:
        print(f"mdr: ablate: training {arm}, seed {seed} ({train_config.max_steps} steps)", file=sys.stderr)
    train(train_config)
    run = TrainLayout(Path(train_config.out))
    trained = [json.loads(line) for line in run.metrics.read_text().splitlines() if line.strip()]
    last = [record for record in trained if record.get("split") == "train"][-1]
    curves = {name: [[record["trained_tokens"], record["bpb"]] for record in trained
                     if record.get("split") == "eval" and record.get("set") == name]
              for name in train_config.eval_sets}  # CURVE_SETS
    model, _ = load_model(run.root, config.device)
    metrics = {name: runner.evaluate_file(model, run.tokenizer, layout.eval_set(name), config.batch_size,
                                          config.device, seed) for name in eval_sets}
    manifest = json.loads(run.manifest.read_text())
    result = {"arm": arm, "seed": seed, "steps": last["step"], "tokens": last["tokens"],
              "epochs": last["tokens"] / arm_tokens, "tokenizer_sha256": manifest["tokenizer"]["sha256"],
              "bpb": {name: values["bpb"] for name, values in metrics.items()}, "metrics": metrics,
              "curves": curves, "tasks": _scored_tasks(model, run.tokenizer, tasks),
              "train_config": dataclasses.asdict(train_config)}
    write_atomically(layout.result(arm, seed), json.dumps(result, indent=2) + "\n")


def format_table(summary: dict) -> str:
    """Mean ± std bits per byte per arm and eval set, and the difference to the first arm with its interval; then
    the same of each task's acc_norm, where higher is better."""
    lines = [f"{'arm':<16} {'eval set':<16} {'epochs':>7} {'bpb mean ± std':>18}  difference to the first arm"]
    lines += [_table_row(summary, row["arm"], row["eval_set"], row["bpb"], row["difference"])
              for row in summary["results"]]
    if summary.get("task_results"):
        lines.append(f"{'arm':<16} {'task':<16} {'epochs':>7} {'acc_norm ± std':>18}  "
                     "difference to the first arm")
        lines += [_table_row(summary, row["arm"], row["task"], row[row["metric"]], row["difference"])
                  for row in summary["task_results"]]
    return "\n".join(lines)


def _table_row(summary: dict, arm: str, name: str, spread: dict, difference: dict | None) -> str:
    std = f"{spread['std']:.4f}" if spread["std"] is not None else "-"
    mean = f"{spread['mean']:>9.4f}" if spread["mean"] is not None else f"{'-':>9}"  # None: a run diverged
    if difference is None:
        versus = "(baseline)"
    elif difference["low"] is None:
        versus = (f"{difference['mean']:+.4f}  " if difference["mean"] is not None else "") + difference["verdict"]
    else:
        versus = (f"{difference['mean']:+.4f} [{difference['low']:+.4f}, {difference['high']:+.4f}]  "
                  f"{difference['verdict']}")
    epochs = summary["arms"][arm]["epochs"]
    return f"{arm:<16} {name:<16} {epochs:>7.2f} {mean} ± {std:<6}  {versus}"
