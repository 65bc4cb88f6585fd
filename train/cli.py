"""The training verbs of the `mdr` command.

    mdr tokenize SHARDS --tokenizer T --out TOK [--executor local|ray|slurm] [--workers N]
    mdr train --data SHARDS|TOK|NAME=SHARDS:WEIGHT ... --out RUN [--preset tiny|gpt2-124m] [--n-layer L ...]
              [--tokenizer PATH] [--max-steps N]
              [--label-smoothing E] [--entropy-reg L] [--eval NAME=SHARDS ...] [--resume [auto]]
              [--keep-checkpoints K] [...]
    mdr eval RUN [--data SHARDS|NAME=SHARDS ... [--split auto|val|all]] [--task FILE.jsonl ...] [--json]
    mdr sample RUN --prompt TEXT [--prompt TEXT ...] [--strategy S | --compare] [--json]
    mdr export RUN --hf DIR

`torchrun --nproc-per-node N -m mdr train ...` trains with DDP, one process per GPU (or CPU rank);
with `--max-restarts M ... train --resume auto ...` torchrun restarts a failed run from its last checkpoint.
A mistaken request is one line and exit code 2; a failure while running (unreadable data, a full disk) one line
and exit code 1. These verbs need the `train` extra (torch, tensorboard): without it they say so in one line.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib.util
import json
import os
import re
import sys

from mdr.errors import UsageError

# An evaluation set's name (`--eval NAME=PATH`) names records, TensorBoard groups and files (mdr ablate's
# eval/NAME.parquet): letters, digits, '.', '_' and '-', not led by '.' (a hidden file) or '-' (a flag).
EVAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

# `mdr train` flags that map one to one onto TrainConfig fields; unset flags keep the dataclass defaults.
_TRAIN_OPTIONS = {
    "--preset": (str, "model shape: tiny (CPU) or gpt2-124m"),
    "--n-layer": (int, "transformer blocks (default: the preset's)"),
    "--n-head": (int, "attention heads per block (default: the preset's)"),
    "--n-embd": (int, "model width, a multiple of the head count (default: the preset's)"),
    "--tokenizer": (str, "tokenizer.json to use (default: train one on the data, stored in RUN)"),
    "--tokenizer-vocab-size": (int, "vocabulary of the tokenizer trained when --tokenizer is omitted"),
    "--max-steps": (int, "optimizer steps"),
    "--batch-size": (int, "sequences per micro-batch per rank"),
    "--grad-accum": (int, "micro-batches per optimizer step"),
    "--seq-len": (int, "tokens per sequence (default: the preset's context)"),
    "--lr": (float, "peak learning rate"),
    "--warmup-fraction": (float, "share of the steps spent warming the learning rate up"),
    "--weight-decay": (float, "AdamW weight decay"),
    "--label-smoothing": (float, "label smoothing ε (0: plain MLE)"),
    "--entropy-reg": (float, "entropy regularisation λ: loss = NLL − λ·entropy (0: plain MLE)"),
    "--seed": (int, "model init and data order seed"),
    "--val-fraction": (float, "documents held out for evaluation, by text hash"),
    "--eval-interval": (int, "steps between held-out evaluations"),
    "--eval-batches": (int, "held-out batches per rank per evaluation"),
    "--checkpoint-interval": (int, "steps between checkpoints"),
    "--keep-checkpoints": (int, "besides RUN/ckpt.pt (the latest), keep the last K checkpoints as "
                                "RUN/checkpoints/step_NNNNNN.pt (default 0)"),
    "--log-interval": (int, "steps between train-loss log lines"),
    "--num-workers": (int, "data loader worker processes per rank"),
    "--device": (str, "auto, cpu, cuda or cuda:N"),
}


def register(verbs) -> None:
    """Adds train, eval, sample and export to the mdr CLI. Imports nothing heavy: torch loads only when a training
    verb runs, so every other `mdr` command starts fast (presets and strategies are checked by their configs)."""
    tokenize = verbs.add_parser("tokenize", help="tokenize Parquet shards once into token files for mdr train")
    tokenize.add_argument("data", nargs="+", metavar="SHARDS",
                          help="Parquet files, directories, globs, fsspec URLs or `mdr run` output directories")
    tokenize.add_argument("--tokenizer", required=True, metavar="T", help="tokenizer.json (or its directory)")
    tokenize.add_argument("--out", required=True, metavar="TOK", help="token directory to write, or to resume")
    tokenize.add_argument("--executor", choices=["local", "ray", "slurm"], default="local",
                          help="runs one task per shard, as `mdr run`'s phases (Slurm and Ray: TOK on a shared disk)")
    tokenize.add_argument("--workers", type=int, default=-1, metavar="N",
                          help="tasks at a time (default: local, one per core; Ray, Slurm: as the cluster allows)")
    tokenize.add_argument("--text-column", default="text")
    tokenize.add_argument("--no-progress", action="store_true")
    tokenize.set_defaults(handler=cmd_tokenize)

    train = verbs.add_parser("train", help="train a GPT on Parquet shards by maximum likelihood")
    train.add_argument("--data", nargs="+", action="extend", required=True, metavar="SHARDS",
                       help="Parquet files, directories, globs, fsspec URLs or `mdr run` output directories; or a "
                            "token directory of `mdr tokenize` (its tokenizer unless --tokenizer). A weighted "
                            "mixture: NAME=SHARDS:WEIGHT for each source (--data web=OUT:0.7 --data books=DIR:0.3), "
                            "each sequence drawn from the source furthest behind its share; the tokens and epochs "
                            "of each source are in RUN/metrics.jsonl, its held-out metrics beside the overall ones")
    train.add_argument("--out", required=True, metavar="RUN", help="run directory: checkpoint, metrics, manifest")
    for flag, (kind, text) in _TRAIN_OPTIONS.items():
        train.add_argument(flag, type=kind, help=text)
    train.add_argument("--resume", nargs="?", const=True, default=False, type=_resume_mode, metavar="auto",
                       help="continue RUN/ckpt.pt (give the same options); `--resume auto`: continue it if there is "
                            "one, else start afresh (for torchrun --max-restarts)")
    train.add_argument("--eval", action="append", default=[], metavar="NAME=SHARDS",
                       help="an evaluation set, evaluated with the held-out split every --eval-interval steps "
                            "whatever --val-fraction (its first --eval-batches batches, whole documents in file "
                            "order): a Parquet file, directory, glob, URL or `mdr run` output directory, as for "
                            "--data, or a token directory; a record {\"split\": \"eval\", \"set\": NAME, ...} in RUN/metrics.jsonl. "
                            "Repeat for more sets; may change on --resume")
    train.add_argument("--compile", action="store_true", help="torch.compile the model")
    train.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    train.set_defaults(handler=cmd_train)

    evaluate = verbs.add_parser("eval", help="held-out NLL, perplexity, bits per byte, entropy and calibration; "
                                             "zero-shot multiple-choice accuracy")
    evaluate.add_argument("run", metavar="RUN")
    evaluate.add_argument("--data", nargs="+", action="extend", metavar="SHARDS",
                          help="Parquet files, directories, globs, fsspec URLs or `mdr run` output directories; or a "
                               "token directory of `mdr tokenize`. NAME=SHARDS for each source of a mixture "
                               "(a :WEIGHT after it is allowed and unused): metrics per source and overall (every "
                               "evaluated token pooled)")
    evaluate.add_argument("--split", choices=["auto", "val", "all"], default="auto",
                          help="auto (default): val when SHARDS hold a file RUN trained on (a path or sha256 its "
                               "manifest lists), all otherwise; val: the documents the run held out (by text hash); "
                               "all: every document")
    evaluate.add_argument("--task", action="append", metavar="FILE.jsonl",
                          help="multiple-choice questions, one JSON object a line: {\"context\": ..., \"choices\": "
                               "[...], \"label\": INDEX}; prints acc and acc_norm (log-likelihood per byte of the "
                               "choice). A choice is scored as the context's continuation: start it with a space "
                               "where it begins a word (lm-evaluation-harness's convention). Repeat for more tasks")
    evaluate.add_argument("--max-batches", type=int, help="stop after N batches (default: all)")
    evaluate.add_argument("--batch-size", type=int, help="sequences per batch (default: the run's)")
    evaluate.add_argument("--device", default="cpu")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    evaluate.set_defaults(handler=cmd_eval)

    sample = verbs.add_parser("sample", help="continue prompts with a decoding strategy; --compare runs them all")
    sample.add_argument("run", metavar="RUN")
    sample.add_argument("--prompt", action="append", required=True, metavar="TEXT", help="repeat for more prompts")
    sample.add_argument("--strategy", default="top-p", help="greedy, beam, top-k, top-p or temperature")
    sample.add_argument("--compare", action="store_true", help="every strategy on the same prompts, as a table")
    sample.add_argument("--max-new-tokens", type=int)
    sample.add_argument("--top-k", type=int)
    sample.add_argument("--top-p", type=float)
    sample.add_argument("--temperature", type=float)
    sample.add_argument("--beam-width", type=int)
    sample.add_argument("--length-penalty", type=float, metavar="ALPHA",
                        help="beam search ranks log P / lp(Y), lp = ((5+|Y|)/6)^ALPHA (Wu et al. 2016; default 0.6; "
                             "0: log-probability alone)")
    sample.add_argument("--min-new-tokens", type=int, metavar="N",
                        help="no end of document before N tokens (default 1; 0 allows empty continuations)")
    sample.add_argument("--seed", type=int)
    sample.add_argument("--device", default="cpu")
    sample.add_argument("--json", action="store_true")
    sample.set_defaults(handler=cmd_sample)

    export = verbs.add_parser("export", help="write the model as a Hugging Face transformers GPT-2")
    export.add_argument("run", metavar="RUN")
    export.add_argument("--hf", required=True, metavar="DIR", help="directory for from_pretrained")
    export.set_defaults(handler=cmd_export)


def require_train_extra(verb: str, *modules: str) -> None:
    """The `train` extra's modules a verb needs (pyproject.toml): a curation-only install lacks them."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(f"mdr {verb} needs {' and '.join(missing)}, which the train extra installs: "
                         "pip install 'mdr[train]'")


def reported(handler):
    """A verb whose failures while running are one line on stderr and exit code 1, not a traceback: input data
    found unreadable mid-run, memory exhausted (torch's CUDA one included). An OSError (a full disk, EIO) goes on
    to `mdr`'s main(), which words it for every verb (mdr/cli.py, _os_error_line). Mistakes in the request
    itself are UsageErrors, exit code 2, raised before anything is written."""

    @functools.wraps(handler)
    def run(args) -> int:
        from mdr.cli import print_error
        from mdr.train.tokenizer import DataError, one_line

        try:
            return handler(args)
        except Exception as error:
            if not isinstance(error, (DataError, MemoryError, *_out_of_memory_errors())):
                raise
            print_error(one_line(error))  # through terminal.safe: DataError quotes file names, which are data
            return 1

    return run


def _out_of_memory_errors() -> tuple[type[BaseException], ...]:
    """torch's out-of-memory exception, if torch is loaded: torch.OutOfMemoryError in recent torch, which older
    releases that pyproject allows (torch>=2.4) lack; torch.cuda.OutOfMemoryError there."""
    torch = sys.modules.get("torch")
    if torch is None:
        return ()
    found = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    return (found,) if found is not None else ()


def check_device(name: str) -> str:
    """--device checked before anything loads: a known device type, and CUDA only where torch sees it."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}: use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: torch sees no CUDA device here")
    return name


def _at_least_one(value: int | None, flag: str) -> int | None:
    if value is not None and value < 1:
        raise UsageError(f"{flag} must be at least 1, got {value}")
    return value


def parse_named_path(text: str, flag: str = "--eval") -> tuple[str, str]:
    """`NAME=PATH` -> (name, path), for flags that name what they give (`--eval`): the name as EVAL_NAME allows."""
    name, sep, path = text.partition("=")
    if not sep or not path:
        raise UsageError(f"{flag} {text}: give NAME=PATH")
    if not EVAL_NAME.fullmatch(name):
        raise UsageError(f"{flag} {text}: the name must be letters, digits, '.', '_' or '-', not starting with a "
                         "punctuation mark")
    return name, path


def named_paths(texts: list[str], parse=parse_named_path, flag: str = "--eval") -> dict[str, str]:
    """Each `NAME=PATH` of a repeated flag, parsed by `parse` (parse_named_path or a stricter one), as a dict in the
    order given; a name given twice is refused."""
    named: dict[str, str] = {}
    for text in texts:
        name, path = parse(text)
        if name in named:
            raise UsageError(f"{flag} {name} is given twice ({named[name]} and {path}): give each set once")
        named[name] = path
    return named


# A mixture's source: NAME=SHARDS:WEIGHT (`mdr train --data web=OUT:0.7`); the weight a plain decimal number.
_SOURCE = re.compile(r"(?P<name>[^=]+)=(?P<path>.+?)(?::(?P<weight>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?))?")


def parse_sources(items: list[str], weighted: bool = True) -> tuple[dict[str, list[str]], dict[str, float]] | None:
    """`--data` items as a mixture, (name -> [shards], name -> weight), when they are NAME=SHARDS:WEIGHT (train) or
    NAME=SHARDS[:WEIGHT] (eval, `weighted` False); None when none is (plain shards). Mixing the two forms, a
    name given twice, a bad name or a weight that is not positive is a one-line UsageError.

    An item is a source only if NAME is a valid name and SHARDS, with the weight, is all of it; so a path holding
    '=' (a Hive partition, `lang=en/`) stays a path, unless it also ends in `:NUMBER`."""
    parsed = []
    for item in items:
        match = _SOURCE.fullmatch(item)
        ok = match and EVAL_NAME.fullmatch(match["name"]) and (match["weight"] is not None or not weighted)
        ok = ok and (weighted or not os.path.exists(item))  # `mdr eval --data lang=en/`: the directory it names
        parsed.append(match if ok else None)
    if not any(parsed):
        return None
    plain = [item for item, match in zip(items, parsed) if match is None]
    if plain:
        form = "NAME=SHARDS:WEIGHT" if weighted else "NAME=SHARDS"
        raise UsageError(f"--data {plain[0]}: in a mixture give every source as {form} (one --data each)")
    sources, weights = {}, {}
    for match in parsed:
        name = match["name"]
        if name in sources:
            raise UsageError(f"--data: source {name} is given twice: give each source once")
        weight = float(match["weight"]) if match["weight"] is not None else 1.0
        if not weight > 0.0:
            raise UsageError(f"--data {match.string}: the weight must be above 0")
        sources[name], weights[name] = [match["path"]], weight
    return sources, weights


def _resume_mode(value: str) -> str:
    if value != "auto":
        raise argparse.ArgumentTypeError(f"takes no value, or 'auto' (got {value!r})")
    return value


def _option_name(flag: str) -> str:
    return flag.removeprefix("--").replace("-", "_")


@reported
def cmd_tokenize(args) -> int:
    from mdr.pipeline.executors import ExecutorOptions
    from mdr.train.tokenize import tokenize

    tokenize(args.data, args.tokenizer, args.out, args.workers, args.text_column, not args.no_progress,
             executor=ExecutorOptions(kind=args.executor, workers=args.workers))
    print(args.out)
    return 0


@reported
def cmd_train(args) -> int:
    require_train_extra("train", "torch", "tensorboard")
    from mdr.train.trainer import TrainConfig, train

    options = {_option_name(f): getattr(args, _option_name(f)) for f in _TRAIN_OPTIONS}
    eval_sets = {name: [path] for name, path in named_paths(args.eval).items()}
    sources, weights = parse_sources(args.data) or ({}, {})
    data = [path for paths in sources.values() for path in paths] if sources else args.data
    config = TrainConfig(data=data, out=args.out, resume=args.resume, compile=args.compile,
                         progress=not args.no_progress, eval_sets=eval_sets, sources=sources, weights=weights,
                         **{k: v for k, v in options.items() if v is not None})
    try:
        result = train(config)
    except KeyboardInterrupt:
        print("mdr: interrupted; continue from the last checkpoint with the same command and --resume",
              file=sys.stderr)
        return 130
    if result.get("nll") is not None and config.progress:
        print(f"mdr: step {result['step']}: held-out nll {result['nll']:.4f}, ppl {result['ppl']:.2f}, "
              f"bpb {result['bpb']:.4f}, entropy {result['entropy']:.4f}, ece {result['ece']:.4f} -> {args.out}",
              file=sys.stderr)
    if config.progress:
        for name, seen in result.get("mixture", {}).items():
            held_out = result.get("sources", {}).get(name)
            epochs = f"{seen['epochs']:.2f} epochs" if seen["epochs"] is not None else "no training tokens counted"
            print(f"mdr: source {name}: {seen['tokens']:,} tokens trained on ({epochs})"
                  + (f", held-out nll {held_out['nll']:.4f}, bpb {held_out['bpb']:.4f}" if held_out else ""),
                  file=sys.stderr)
        for name, metrics in result["eval_sets"].items():
            print(f"mdr: step {result['step']}: eval set {name}: nll {metrics['nll']:.4f}, bpb {metrics['bpb']:.4f}",
                  file=sys.stderr)
    return 0


@reported
def cmd_eval(args) -> int:
    require_train_extra("eval", "torch")
    from mdr.layout import TrainLayout
    from mdr.pipeline.terminal import safe
    from mdr.train.checkpointing import load_model
    from mdr.train.tasks import evaluate_task, read_task
    from mdr.train.tokenizer import load_tokenizer

    if not args.data and not args.task:
        raise UsageError("nothing to evaluate on: give --data SHARDS, --task FILE.jsonl or both")
    if not args.data:  # these choose how --data is read: without it they would be ignored without a word
        given = [flag for flag, value in (("--split", args.split != "auto"), ("--max-batches", args.max_batches),
                                          ("--batch-size", args.batch_size)) if value]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise UsageError(f"{', '.join(given)} {verb} to --data, which is not given (--task scores every question)")
    _at_least_one(args.max_batches, "--max-batches")
    _at_least_one(args.batch_size, "--batch-size")
    tasks = {path: read_task(path) for path in args.task or []}  # every task file checked before the model loads
    model, config = load_model(args.run, check_device(args.device))
    result = _held_out_metrics(args, model, config) if args.data else {}
    if tasks:
        tokenizer = load_tokenizer(str(TrainLayout(args.run).tokenizer))
        result["tasks"] = {path: evaluate_task(model, tokenizer, questions) for path, questions in tasks.items()}
    if args.json:
        print(json.dumps(result))
        return 0
    metrics = {k: v for k, v in result.items() if k not in ("tasks", "sources")}
    if metrics:
        print(("overall  " if "sources" in result else "") + _metrics_line(metrics))
    for name, values in result.get("sources", {}).items():
        print(f"{name}  {_metrics_line(values)}")
    for path, scores in result.get("tasks", {}).items():
        print(safe(f"{path}: acc {scores['acc']:.4f}  acc_norm {scores['acc_norm']:.4f}  n {scores['n']:,}  "
                   f"chance {scores['chance']:.4f}"))
    return 0


def _metrics_line(metrics: dict) -> str:
    return "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v:,}" for k, v in metrics.items())


def _trained_on_sources(run: str, sources: list[dict]) -> bool | None:
    """trained_on for token files: whether a source shard of theirs (by the sha256 their manifest records, the
    source itself may be gone) is one the run trained on; None without a readable run manifest."""
    from mdr.layout import TrainLayout

    try:
        hashes = {shard["sha256"] for shard in json.loads(TrainLayout(run).manifest.read_text())["shards"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return any(source["sha256"] in hashes for source in sources)


def _eval_split(args, val_fraction: float, files: list[str], sources: list[dict] | None = None) -> tuple[str, str]:
    """The split `mdr eval --split` names, and why: auto is val on the run's own training data, all on other data.
    `sources`: token files' source shards, which stand for `files`."""
    from mdr.train.evaluate import trained_on

    split, reason = args.split, f"--split {args.split}"
    if split == "auto":
        own = trained_on(args.run, files) if sources is None else _trained_on_sources(args.run, sources)
        if own is None:
            from mdr.layout import TrainLayout

            raise UsageError(f"{TrainLayout(args.run).manifest} is missing or unreadable, so --split auto cannot tell "
                             "whether --data is the run's training data: give --split val or --split all")
        split = "val" if own else "all"
        reason = ("--split auto: --data holds files the run trained on" if own else
                  "--split auto: --data holds none of the files the run trained on; its documents are not checked one "
                  "by one")
    if split == "val" and val_fraction == 0.0:
        raise UsageError(f"{args.run} held nothing out (val_fraction 0; {reason}): use --split all to evaluate "
                         "every document")
    return split, reason


def _held_out_metrics(args, model, config: dict) -> dict:
    """`mdr eval --data`: the metrics of evaluate() on the split of SHARDS that --split names; with NAME=SHARDS
    sources, each source's (its own split, decided as for plain SHARDS) under "sources" and the overall metrics
    (every evaluated token pooled) at the top."""
    from mdr.train.evaluate import NoHeldOutData, evaluate, evaluate_sources, token_byte_lengths

    sources = parse_sources(args.data, weighted=False)
    token_bytes = token_byte_lengths(_run_tokenizer(args.run), model.config.vocab_size)
    if sources is None:
        loader, split, reason = _eval_loader(args, config, model.config.block_size, args.data)
        try:
            metrics = evaluate(model, loader, token_bytes, args.max_batches, args.device)
        except NoHeldOutData:
            raise _no_tokens(args.data, loader, split, reason) from None
        if args.split == "auto":
            print(f"mdr: evaluated {_split_words(split)} ({reason})", file=sys.stderr)
        return metrics
    loaders = {name: _eval_loader(args, config, model.config.block_size, paths, name)
               for name, paths in sources[0].items()}
    try:
        overall, per_source = evaluate_sources(model, {name: loader for name, (loader, _, _) in loaders.items()},
                                               token_bytes, args.max_batches, args.device)
    except NoHeldOutData:
        name, (loader, split, reason) = next(iter(loaders.items()))
        raise _no_tokens([f"any source ({name}: {sources[0][name][0]})"], loader, split, reason) from None
    for name, (loader, split, reason) in loaders.items():
        if name not in per_source:
            print(f"mdr: source {name}: no tokens to evaluate ({_split_words(split)}, {reason}): left out of the "
                  "overall metrics", file=sys.stderr)
        elif args.split == "auto":
            print(f"mdr: source {name}: evaluated {_split_words(split)} ({reason})", file=sys.stderr)
    return {**overall, "sources": per_source}


def _run_tokenizer(run: str) -> str:
    from mdr.layout import TrainLayout

    return str(TrainLayout(run).tokenizer)


def _split_words(split: str) -> str:
    return "the held-out split" if split == "val" else "every document"


def _no_tokens(data: list[str], loader, split: str, reason: str) -> UsageError:
    batch = f"{loader.batch_size}×{loader.seq_len} tokens"
    if split == "val":
        return UsageError(f"no held-out tokens in {' '.join(data)} ({reason}): its documents in the run's held-out "
                          f"split make less than one batch of {batch}; --split all evaluates every document, the "
                          "trained-on ones included")
    return UsageError(f"no tokens in {' '.join(data)} ({reason}): less than one batch of {batch}")


def _eval_loader(args, config: dict, seq_len: int, data: list[str], source: str | None = None):
    """(loader, split, reason) for evaluating `data` (one source of a mixture, named `source`, or plain --data):
    the split `--split` names of its documents, in one epoch of batches."""
    from mdr.train.data import TokenLoader, read_token_manifest, token_directory
    from mdr.train.tokenizer import load_tokenizer, resolve_parquet_files

    tokenizer = _run_tokenizer(args.run)
    try:
        tokens = token_directory(data)  # `mdr tokenize`'s output, made with the run's tokenizer (else refused)
        if tokens is not None:
            files = [str(tokens)]
            sources = [shard["source"] for shard in read_token_manifest(tokens, load_tokenizer(tokenizer))["shards"]]
        else:
            files, sources = resolve_parquet_files(data), None
        split, reason = _eval_split(args, config["val_fraction"], files, sources)
        loader_split, val_fraction = ("val", config["val_fraction"]) if split == "val" else ("train", 0.0)
        loader = TokenLoader(files, tokenizer, seq_len, args.batch_size or config["batch_size"],
                             seed=config["seed"], split=loader_split, val_fraction=val_fraction, epochs=1)
    except UsageError as error:
        if source is None:
            raise
        raise UsageError(f"source {source}: {error}") from None
    return loader, split, reason


@reported
def cmd_sample(args) -> int:
    require_train_extra("sample", "torch")
    from mdr.layout import TrainLayout
    from mdr.pipeline.terminal import safe
    from mdr.train import sample
    from mdr.train.checkpointing import load_model
    from mdr.train.tokenizer import load_tokenizer

    model, _ = load_model(args.run, check_device(args.device))
    tokenizer = load_tokenizer(str(TrainLayout(args.run).tokenizer))
    chosen = {k: getattr(args, k) for k in ("max_new_tokens", "top_k", "top_p", "temperature", "beam_width",
                                            "length_penalty", "min_new_tokens", "seed")}
    try:
        config = sample.DecodeConfig(strategy=args.strategy, **{k: v for k, v in chosen.items() if v is not None})
    except ValueError as error:
        raise UsageError(str(error)) from None
    if any(not tokenizer.encode(p) for p in args.prompt):
        raise UsageError("a --prompt is empty: give at least one character")
    strategies = sample.STRATEGIES if args.compare else (args.strategy,)
    rows = sample.compare(model, tokenizer, args.prompt, config, strategies)
    if args.json:
        settings = {k: v for k, v in dataclasses.asdict(config).items() if k != "strategy"}
        print(json.dumps({"prompts": args.prompt, "settings": settings, "strategies": rows}, indent=2))
    elif args.compare:
        print(sample.format_table(rows))
        for row in rows:
            for prompt, text in zip(args.prompt, row["samples"]):
                print(safe(f"\n[{row['strategy']}] {prompt}{text}"))
    else:
        for prompt, text in zip(args.prompt, rows[0]["samples"]):
            print(safe(prompt + text))  # generated from crawled pages: it may hold their escape sequences
    return 0


@reported
def cmd_export(args) -> int:
    require_train_extra("export", "torch")
    from mdr.train.export import export_hf

    out = export_hf(args.run, args.hf)
    print(f"mdr: GPT2LMHeadModel and tokenizer -> {out} (load with GPT2LMHeadModel.from_pretrained)",
          file=sys.stderr)
    return 0
