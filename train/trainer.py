"""Training by maximum likelihood (nanoGPT's train.py, with torchtitan's resumable components).

    train(TrainConfig(data=[...], out="RUN", tokenizer="tokenizer.json"))

One process, or one per GPU under `torchrun --nproc-per-node N` (DDP: gloo on CPU, NCCL on GPU); the model never
knows. AdamW (fused on CUDA), linear warmup then cosine decay, gradient clipping and accumulation, bf16 autocast on
GPU, optional torch.compile. The step is `train_step`; `train` around it loads data, evaluates, logs and saves.
Every eval_interval steps it evaluates the held-out split and each named eval set (`eval_sets`, learning curves on
data of one's choosing, as `mdr ablate` draws them), without changing the trajectory. The data is one source
(`data`) or a weighted mixture (`sources`, `weights`: train/mixture.py), whose every source is also evaluated alone.

RUN/ holds the checkpoint (train/checkpointing.py), the run's records (train/runlog.py: manifest, metrics.jsonl,
TensorBoard) and its tokenizer; `mdr.layout.TrainLayout` names them all. A checkpoint holds the model, optimizer,
scheduler, every rank's RNG states and loader position, step and config.
A resumed run (`resume=True`) continues the identical trajectory: on CPU, bitwise. `resume="auto"` resumes when
RUN/ckpt.pt exists and starts afresh otherwise, so that `torchrun --max-restarts N` restarts a run by itself. A RUN
holding files of a run but no checkpoint is refused unless resume="auto".
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import itertools
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from mdr.atomic import write_atomically
from mdr.errors import UsageError
from mdr.layout import TokenLayout, TrainLayout
from mdr.train import objective
from mdr.train.checkpointing import (CHECKPOINT_FORMAT, read_checkpoint, remove_stale_temporaries, rng_state,
                                     same_file, save_checkpoint, set_aside_abandoned, set_rng_state)
from mdr.train.data import TokenLoader, read_token_manifest, token_directory
from mdr.train.distributed import gather, setup_distributed, unwrap
from mdr.train.evaluate import NoHeldOutData, evaluate, evaluate_sources, token_byte_lengths
from mdr.train.mixture import MixtureLoader, normalized, split_tokens
from mdr.train.model import GPT, PRESETS, config_for
from mdr.train.runlog import MetricsLog, Progress, write_manifest
from mdr.train.tokenizer import (BYTE_ALPHABET_SIZE, EOS_TOKEN, load_tokenizer, open_text_parquet,
                                 resolve_parquet_files, train_tokenizer)

# Vocabulary of a tokenizer trained by `train` when none is given: GPT-2's 50,257 for GPT-2; a small one for the CPU
# preset, whose embedding would otherwise outweigh the rest of the model.
TOKENIZER_VOCAB_SIZE = {"tiny": 4096, "gpt2-124m": 50257}
# Peak learning rate by preset: nanoGPT's "baby GPT" (shakespeare_char) for the tiny model, GPT-3 Table 2.1 (125M)
# for GPT-2 small.
PEAK_LR = {"tiny": 1e-3, "gpt2-124m": 6e-4}


@dataclass
class TrainConfig:
    data: list[str]  # Parquet shards: files, directories, globs, fsspec URLs or `mdr run` output directories
    out: str  # the run directory
    tokenizer: str | None = None  # tokenizer.json, copied into the run; None: train one on the data into the run
    tokenizer_vocab_size: int | None = None  # for a tokenizer trained here; None: TOKENIZER_VOCAB_SIZE[preset]
    preset: str = "tiny"  # model shape, a key of model.PRESETS
    n_layer: int | None = None  # None: the preset's depth (`--n-layer`, mdr scale's sizes)
    n_head: int | None = None  # None: the preset's head count
    n_embd: int | None = None  # None: the preset's width; must be a multiple of the head count
    vocab_size: int | None = None  # None: the tokenizer's, padded to a multiple of 64 (nanoGPT)
    seq_len: int | None = None  # None: the preset's context length
    batch_size: int = 12  # sequences per micro-batch per rank (nanoGPT's train.py)
    grad_accum: int = 1  # micro-batches per optimizer step (nanoGPT uses 40 on 1 GPU for GPT-2's 0.5M-token batch)
    max_steps: int = 5000  # optimizer steps (nanoGPT's shakespeare_char config)
    lr: float | None = None  # peak learning rate; None: PEAK_LR[preset]
    min_lr_ratio: float = 0.1  # cosine decays to 10% of the peak (Chinchilla, Hoffmann et al. 2022; nanoGPT)
    warmup_fraction: float = 0.037  # llm.c's GPT-2 (124M) run: 700 warmup steps of 19,073
    weight_decay: float = 0.1  # GPT-3, on matrices only (nanoGPT)
    beta1: float = 0.9  # GPT-3
    beta2: float = 0.95  # GPT-3
    grad_clip: float = 1.0  # global gradient norm, GPT-3
    label_smoothing: float = 0.0  # ε of lecture §3.6.2; 0 is plain MLE
    entropy_reg: float = 0.0  # λ of entropy-regularised MLE, lecture §3.6.1; 0 is plain MLE
    seed: int = 0  # model init and data order
    val_fraction: float = 0.01  # documents held out by text hash (the loader's default)
    eval_interval: int = 250  # steps between held-out evaluations (and at the last step)
    eval_batches: int = 20  # held-out batches per rank per evaluation (nanoGPT: 200 over a larger batch)
    checkpoint_interval: int = 250  # steps between checkpoints (and at the last step)
    log_interval: int = 10  # steps between train-loss lines; fewer .item() syncs on GPU
    num_workers: int = 0  # DataLoader worker processes per rank (0 reads in the training process)
    compile: bool = False  # torch.compile the model (GPU: faster after a minute of compiling)
    device: str = "auto"  # auto: CUDA when available, else CPU
    progress: bool = True  # a progress line on stderr (rank 0)
    resume: bool | str = False  # True: continue RUN/ckpt.pt; "auto": continue it if there is one, else start afresh
    keep_checkpoints: int = 0  # besides RUN/ckpt.pt, keep the last K checkpoints in RUN/checkpoints/step_NNNNNN.pt
    # named evaluation sets, name -> Parquet shards (as `data`): evaluated with the held-out split, whatever
    # val_fraction, for learning curves on data of one's choosing (`mdr ablate`)
    eval_sets: dict[str, list[str]] = field(default_factory=dict)
    # a weighted mixture (`--data NAME=PATH:WEIGHT ...`, train/mixture.py): name -> shards (as `data`, one source's)
    # and name -> weight (shares of their sum); `data` then lists every source's shards. Empty: `data` is one source
    sources: dict[str, list[str]] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # free-form notes stored in the manifest

    # Options that may change on resume without changing the trajectory's meaning (max_steps changes the schedule).
    # Evaluation does not change the trajectory: it draws no random numbers, runs in eval mode without gradients
    # (restoring train mode), and reads its own batches in this process.
    RESUMABLE_CHANGES = ("max_steps", "eval_interval", "eval_batches", "checkpoint_interval", "log_interval",
                         "compile", "device", "progress", "resume", "keep_checkpoints", "extra", "tokenizer", "data",
                         "out", "eval_sets", "sources")

    def validate(self) -> None:
        """Every option in its valid range, before anything runs (one-line UsageError). Comparisons are written so
        that NaN fails them: `--lr nan` trained a model of NaNs to the end."""
        if self.preset not in PRESETS:
            raise UsageError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        positive = ("batch_size", "grad_accum", "max_steps", "eval_interval", "eval_batches", "checkpoint_interval",
                    "log_interval")
        for name in positive:
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("seq_len", "vocab_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise UsageError(f"{name} must be at least 1, got {getattr(self, name)}")
        shape = PRESETS[self.preset]
        n_head, n_embd = self.n_head or shape.n_head, self.n_embd or shape.n_embd
        if n_embd % n_head:
            raise UsageError(f"n_embd {n_embd} is not a multiple of n_head {n_head}"
                             + (f" (the {self.preset} preset's)" if not (self.n_head and self.n_embd) else ""))
        minimum_vocabulary = BYTE_ALPHABET_SIZE + 1
        if self.tokenizer_vocab_size is not None and self.tokenizer_vocab_size < minimum_vocabulary:
            raise UsageError(f"tokenizer_vocab_size must be at least {minimum_vocabulary} (256 bytes + "
                              f"{EOS_TOKEN}), got {self.tokenizer_vocab_size}")
        for name in ("num_workers", "keep_checkpoints"):
            if getattr(self, name) < 0:
                raise UsageError(f"{name} must be at least 0, got {getattr(self, name)}")
        if not 0 <= self.seed < 2**64:  # numpy's seeds are non-negative; torch's at most 64 bits
            raise UsageError(f"seed must be in [0, 2^64), got {self.seed}")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0.0):
            raise UsageError(f"lr must be a positive number, got {self.lr}")
        for name in ("weight_decay", "entropy_reg", "grad_clip"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise UsageError(f"{name} must be a number >= 0, got {value}")
        for name in ("warmup_fraction", "label_smoothing", "val_fraction", "beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise UsageError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise UsageError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.resume not in (False, True, "auto"):
            raise UsageError(f"resume must be False, True or 'auto', got {self.resume!r}")
        for name, paths in self.eval_sets.items():
            if not isinstance(name, str) or not name or not paths:
                raise UsageError(f"eval set {name!r}: give a name and at least one path")
        if set(self.sources) != set(self.weights) or any(not paths for paths in self.sources.values()):
            raise UsageError("a mixture names each source once, with its shards and a weight")
        for name, weight in self.weights.items():
            if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight > 0.0):
                raise UsageError(f"source {name}: the weight must be a positive number, got {weight}")
        if self.device != "auto":
            try:
                torch.device(self.device)
            except RuntimeError:
                raise UsageError(f"unknown device {self.device!r}: use auto, cpu, cuda or cuda:N") from None


def lr_multiplier(step: int, max_steps: int, warmup_steps: int, min_lr_ratio: float) -> float:
    """Learning rate at `step` as a fraction of the peak: linear warmup, then cosine decay to min_lr_ratio."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    return min_lr_ratio + 0.5 * (1.0 - min_lr_ratio) * (1.0 + math.cos(math.pi * progress))


def make_optimizer(model: GPT, config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices (and the embedding) only, not on biases and LayerNorm gains (nanoGPT)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2),
                             fused=device.type == "cuda")


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = int(config.warmup_fraction * config.max_steps)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_multiplier(step, config.max_steps, warmup, config.min_lr_ratio))


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler, micro_batches, config: TrainConfig,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step over the micro-batches [(x, y), ...]: returns (mean loss, mean plain NLL) as tensors.

    Under DDP (model wrapped in DistributedDataParallel) gradients are all-reduced once, on the last micro-batch,
    and the returned means are over all ranks' micro-batches.
    """
    ddp = isinstance(model, DistributedDataParallel)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext())
    totals = torch.zeros(2, device=device)
    for index, (x, y) in enumerate(micro_batches):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if ddp:  # all-reduce the gradients only with the last micro-batch's backward pass (nanoGPT)
            model.require_backward_grad_sync = index == len(micro_batches) - 1
        with autocast:
            logits = model(x)
        loss, nll = objective.loss(logits, y, config.label_smoothing, config.entropy_reg)
        (loss / len(micro_batches)).backward()
        totals += torch.stack([loss.detach(), nll.detach()]) / len(micro_batches)
    if config.grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    if ddp:
        dist.all_reduce(totals)
        totals /= dist.get_world_size()
    return totals[0], totals[1]


# ---------------------------------------------------------------------------------------------------------------
# the run around the step: setup, data, evaluation, logging, checkpoints


def _check_resume(stored: dict, config: TrainConfig, world: int, stored_world: int) -> None:
    current = dataclasses.asdict(config)
    changed = sorted(k for k in current if k not in TrainConfig.RESUMABLE_CHANGES and stored.get(k) != current[k])
    if changed:
        raise UsageError("cannot resume with a different " + ", ".join(
            f"{k} (checkpoint {stored.get(k)!r}, now {current[k]!r})" for k in changed))
    if stored_world != world:
        raise UsageError(f"the checkpoint was written by {stored_world} rank(s); resume with {stored_world}, not {world}")


def train(config: TrainConfig, stop_at: int | None = None) -> dict:
    """Trains to config.max_steps (or, if stop_at, saves a checkpoint after step stop_at and returns, as if
    killed there). Returns the last held-out evaluation (or {} if none ran) with the step reached, and under
    "eval_sets" each eval set's last metrics."""
    config.validate()
    if config.lr is None:
        config = dataclasses.replace(config, lr=PEAK_LR[config.preset])
    rank, world, device, started_group = setup_distributed(config.device)
    layout = TrainLayout(config.out)
    try:  # what RUN holds before this attempt writes anything (None: no RUN yet)
        before = {p.name for p in layout.root.iterdir()} if layout.root.is_dir() else None
    except OSError:  # unlistable: _run_directory says why; nothing would be removed
        before = {p.name for p in (*layout.written, layout.checkpoints)}
    try:
        return _train(config, stop_at, rank, world, device)
    except UsageError:
        if rank == 0 and not layout.checkpoint.exists():
            _undo_fresh_start(layout, before)
        raise
    finally:
        if started_group:
            dist.destroy_process_group()


def _undo_fresh_start(layout: TrainLayout, before: set[str] | None) -> None:
    """After a user's mistake found only once a fresh start had begun writing (no training data for a rank, say),
    removes the run's files it created (`before`: RUN's entries beforehand, None if there was no RUN), so that the
    corrected command is not refused for the leftovers of a run that never reached a checkpoint."""
    if not layout.root.is_dir():
        return
    for path in (*layout.written, layout.checkpoints):
        if before is not None and path.name in before:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    if before is None:
        with contextlib.suppress(OSError):  # not empty: someone else's file; leave it
            layout.root.rmdir()


def _is_given_tokenizer(path: Path, given) -> bool:
    """Whether RUN/tokenizer.json is --tokenizer itself or a byte-identical copy of it (what a fresh start copies
    there first): then it is no leftover of another run."""
    if given is None:
        return False
    if same_file(path, given.path):
        return True
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == given.sha256
    except OSError:
        return False


def _run_directory(config: TrainConfig, given_tokenizer) -> bool:
    """Checks RUN before anything is written; True to resume from RUN/ckpt.pt, False to start afresh.

    A RUN without a checkpoint is either started afresh by intent (--resume auto: what an earlier attempt left is
    replaced, its tokenizer reused only if trained with the same settings) or refused: otherwise a failed run's
    tokenizer.json was silently reused, whatever --tokenizer-vocab-size said (issue 10, point 9a)."""
    layout = TrainLayout(config.out)
    run, checkpoint_path = layout.root, layout.checkpoint
    if run.exists() and not run.is_dir():
        raise UsageError(f"--out {run} is a file, not a run directory")
    if run.is_dir() and not os.access(run, os.W_OK | os.X_OK):
        raise UsageError(f"--out {run} is not writable")
    resuming = checkpoint_path.is_file() if config.resume == "auto" else bool(config.resume)
    if resuming and not checkpoint_path.is_file():
        raise UsageError(f"nothing to resume: no {checkpoint_path}")
    if resuming:
        return True
    if checkpoint_path.exists():
        raise UsageError(f"{run} already holds a checkpoint: pass --resume to continue it, or choose another --out")
    if layout.kept_checkpoints():
        raise UsageError(f"{layout.checkpoints} holds checkpoints but there is no {checkpoint_path}: copy the one to "
                          f"continue from to {checkpoint_path.name} and pass --resume, or choose another --out")
    if config.resume != "auto":
        leftovers = [path.name for path in layout.written if path.exists()
                     and not (path == layout.tokenizer and _is_given_tokenizer(path, given_tokenizer))]
        if leftovers:
            raise UsageError(f"{run} holds {', '.join(leftovers)} but no checkpoint (a run that stopped before its "
                              "first one?): pass --resume auto to start it afresh, or choose another --out")
    return False


def _check_vocab_size(vocab_size: int | None, tokenizer_vocab_size: int) -> None:
    if vocab_size is not None and vocab_size < tokenizer_vocab_size:
        raise UsageError(f"vocab_size {vocab_size} is smaller than the tokenizer's {tokenizer_vocab_size}")


def _in_source(name: str | None, check, *args):
    """check(*args), its UsageError led by the mixture source it is about (name None: plain --data)."""
    try:
        return check(*args)
    except UsageError as error:
        if name is None:
            raise
        raise UsageError(f"source {name}: {error}") from None


def _checked_parquet(paths: list[str]) -> list[str]:
    """The Parquet files of `paths`, each with a text column of strings: before anything is written."""
    files = resolve_parquet_files(paths)
    for path in files:
        open_text_parquet(path)
    return files


def _shard_records(source_files: dict, token_manifests: dict) -> list[dict]:
    """The manifest's "shards" (path, sha256, size) of every source: token files stand for their source shards,
    whose records their manifest holds already."""
    from mdr.train.runlog import file_sha256, file_size

    records = []
    for name, files in source_files.items():
        if name in token_manifests:
            records += [shard["source"] for shard in token_manifests[name]["shards"]]
        else:
            records += [{"path": f, "sha256": file_sha256(f), "size": file_size(f)} for f in files]
    return records


def _eval_set_files(name: str, paths: list[str], tokenizer) -> list[str]:
    """The Parquet files of eval set `name`, each checked as the data's are (a text column of strings), or its token
    directory (made with `tokenizer`, the given one, where known), holding a document: before anything is written."""
    try:
        tokens = token_directory(paths)
        if tokens is not None:
            files, documents = [str(tokens)], read_token_manifest(tokens, tokenizer)["documents"]
        else:
            files = resolve_parquet_files(paths)
            documents = sum(open_text_parquet(path).metadata.num_rows for path in files)
    except UsageError as error:
        raise UsageError(f"eval set {name}: {error}") from None
    if not documents:
        raise UsageError(f"eval set {name} holds no documents ({', '.join(files)})")
    return files


def _read_eval_set(name: str, files: list[str], tokenizer_path: str, seq_len: int, config: TrainConfig, rank: int,
                   world: int) -> list:
    """The batches of eval set `name` this rank evaluates, the same at every evaluation, so read and tokenized once:
    its first eval_batches, of whole documents in file order, the set dealt over the ranks as the held-out split is.
    A set too small for one batch on any rank is refused; on a fresh start this comes after the tokenizer is made
    (train() then removes what was written)."""
    try:
        loader = TokenLoader(files, tokenizer_path, seq_len, config.batch_size, rank=rank, world_size=world,
                             seed=config.seed, split="train", val_fraction=0.0, epochs=1, shuffle=False)
    except UsageError as error:
        raise UsageError(f"eval set {name}: {error}") from None
    batches = list(itertools.islice(loader, config.eval_batches))
    if sum(gather(len(batches), world)) == 0:
        raise UsageError(f"eval set {name} holds fewer tokens than one batch of {config.batch_size} × {seq_len} per "
                         "rank: give it more documents, or train with a smaller batch size or sequence length")
    return batches


def _prepare_tokenizer(config: TrainConfig, layout: TrainLayout, files: list[str], given, progress: Progress) -> None:
    """RUN/tokenizer.json: the given one copied, or one trained on the data, unless the one there was trained with
    the same settings (RUN/tokenizer.settings.json records them; an earlier attempt of the run trained it)."""
    run_tokenizer, record = layout.tokenizer, layout.tokenizer_settings
    if given is not None:
        if Path(given.path).resolve() != run_tokenizer.resolve():
            shutil.copyfile(given.path, run_tokenizer)
        record.unlink(missing_ok=True)
        return
    settings = {"vocab_size": config.tokenizer_vocab_size or TOKENIZER_VOCAB_SIZE[config.preset], "data": files}
    try:
        recorded = json.loads(record.read_text())
        reuse = recorded["settings"] == settings and recorded["sha256"] == load_tokenizer(str(run_tokenizer)).sha256
    except (OSError, ValueError, KeyError, TypeError, UsageError):  # no record, or no tokenizer beside it
        reuse = False
    if reuse:
        progress.note(f"mdr: reusing {run_tokenizer}, trained with the same settings by an earlier attempt")
        return
    record.unlink(missing_ok=True)
    progress.note(f"mdr: training a {settings['vocab_size']:,}-token tokenizer on the data -> {run_tokenizer}")
    train_tokenizer(files, settings["vocab_size"], str(run_tokenizer))
    write_atomically(record, json.dumps({"settings": settings, "sha256": load_tokenizer(str(run_tokenizer)).sha256},
                                        indent=2) + "\n", durable=True)


def _train(config: TrainConfig, stop_at: int | None, rank: int, world: int, device: torch.device) -> dict:
    layout = TrainLayout(config.out)
    run = layout.root
    master = rank == 0
    progress = Progress(config.max_steps, config.progress and master)
    given = load_tokenizer(config.tokenizer) if config.tokenizer is not None else None
    mixture = bool(config.sources)
    source_data = config.sources if mixture else {None: config.data}  # one unnamed source, or a mixture's
    # `mdr tokenize`'s outputs: their token files, made with their tokenizer (every one the same)
    token_dirs = {name: tokens for name, paths in source_data.items()
                  if (tokens := _in_source(name, token_directory, paths)) is not None}
    if token_dirs and given is None:
        given = load_tokenizer(str(TokenLayout(next(iter(token_dirs.values()))).tokenizer))
    token_manifests = {name: _in_source(name, read_token_manifest, tokens, given)  # another tokenizer: refused
                       for name, tokens in token_dirs.items()}
    resuming = _run_directory(config, given)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # TF32 for the float32 matmuls left outside autocast
        torch.backends.cudnn.allow_tf32 = True

    # on the CPU: RNG states must stay CPU tensors; load_state_dict copies weights and moments to the model's device
    checkpoint = read_checkpoint(layout.checkpoint) if resuming else None
    if checkpoint is not None and given is not None and given.sha256 != checkpoint["tokenizer_sha256"]:
        raise UsageError(f"cannot resume with another tokenizer: {given.path} is not the run's")
    source_files = {name: [str(token_dirs[name])] if name in token_dirs else _in_source(name, _checked_parquet, paths)
                    for name, paths in source_data.items()}
    files = [path for paths in source_files.values() for path in paths]
    eval_files = {name: _eval_set_files(name, paths, given) for name, paths in config.eval_sets.items()}
    if not resuming:  # the vocabulary against the tokenizer's, before anything is written (resuming: checked then)
        planned = given.vocab_size if given is not None else (config.tokenizer_vocab_size
                                                              or TOKENIZER_VOCAB_SIZE[config.preset])
        _check_vocab_size(config.vocab_size, planned)
    if world > 1:
        dist.barrier()  # every rank has checked RUN before rank 0 writes to it

    # the tokenizer travels with the run: copied there, or trained there on the data
    run_tokenizer = layout.tokenizer
    if master:
        try:
            run.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UsageError(f"cannot create the run directory {run}: {error.strerror}") from None
        remove_stale_temporaries(run)  # saves cut short by a kill
        if not resuming:  # starting afresh: nothing of an earlier attempt stays in the logs
            shutil.rmtree(layout.tensorboard, ignore_errors=True)
            layout.metrics.unlink(missing_ok=True)
        if given is not None or not resuming:
            _prepare_tokenizer(config, layout, files, given, progress)
    if world > 1:
        dist.barrier()
    tokenizer = load_tokenizer(str(run_tokenizer))
    if checkpoint is not None and tokenizer.sha256 != checkpoint["tokenizer_sha256"]:
        raise UsageError(f"{run_tokenizer} is not the tokenizer {layout.checkpoint} was trained with")

    model_config = config_for(config.preset, config.vocab_size or tokenizer.vocab_size, config.seq_len,
                              config.n_layer, config.n_head, config.n_embd)
    _check_vocab_size(model_config.vocab_size, tokenizer.vocab_size)
    seq_len = model_config.block_size
    eval_sets = {name: _read_eval_set(name, set_files, str(run_tokenizer), seq_len, config, rank, world)
                 for name, set_files in eval_files.items()}
    torch.manual_seed(config.seed)  # the same initial weights on every rank
    model = GPT(model_config).to(device)
    optimizer = make_optimizer(model, config, device)
    scheduler = make_scheduler(optimizer, config)
    if mixture:
        loader = MixtureLoader(source_files, config.weights, str(run_tokenizer), seq_len, config.batch_size,
                               rank=rank, world_size=world, num_workers=config.num_workers, seed=config.seed,
                               split="train", val_fraction=config.val_fraction, pin_memory=device.type == "cuda")
    else:
        loader = TokenLoader(files, str(run_tokenizer), seq_len, config.batch_size, rank=rank, world_size=world,
                             num_workers=config.num_workers, seed=config.seed, split="train",
                             val_fraction=config.val_fraction, pin_memory=device.type == "cuda")

    step, resumed_step = 0, None
    epoch_tokens: dict[str, int] = {}  # a mixture's sources: one epoch's tokens (rank 0, for the records)
    if checkpoint is not None:
        _check_resume(checkpoint["config"], config, world, len(checkpoint["ranks"]))
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        mine = checkpoint["ranks"][rank]
        loader.load_state_dict(mine["loader"])
        set_rng_state(mine["rng"])
        step = resumed_step = checkpoint["step"]
        # the same learning rate as saved, or the new schedule's if max_steps changed
        for group, base, schedule in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
            group["lr"] = base * schedule(scheduler.last_epoch)
        checkpoint = None
    if master:
        if resumed_step is not None:
            for moved in set_aside_abandoned(run, resumed_step):
                progress.note(f"mdr: {moved.name} is past the resumed step {resumed_step}: moved to {moved.parent}")
        sources = None
        if mixture:  # each source's weight and one epoch's tokens, which turn the tokens drawn into epochs
            for name, paths in source_files.items():
                if name not in token_dirs:
                    progress.note(f"mdr: counting source {name}'s training tokens (one tokenization pass; token "
                                  "files of `mdr tokenize` count at once)")
                epoch_tokens[name] = split_tokens(paths, tokenizer, "train", config.val_fraction)
            sources = {name: {"weight": weight, "data": config.sources[name], "epoch_tokens": epoch_tokens[name]}
                       for name, weight in normalized(config.weights).items()}
        write_manifest(run, config, model_config, tokenizer, files, device, world, resumed_step, eval_files,
                       shards=functools.partial(_shard_records, source_files, token_manifests), sources=sources)

    train_model = torch.compile(model) if config.compile else model
    if world > 1:
        train_model = DistributedDataParallel(train_model, device_ids=[device.index] if device.type == "cuda" else None)
    token_bytes = token_byte_lengths(str(run_tokenizer), model_config.vocab_size)
    tokens_per_step = config.batch_size * seq_len * config.grad_accum * world
    flops_per_token = model.flops_per_token(seq_len)  # C of a record = its trained tokens × this (issue 13.1)
    log = MetricsLog(run, resumed_step, master)
    last_eval: dict = {}
    last_sets: dict = {}
    eval_enabled = config.val_fraction > 0.0

    # the held-out batches (of each source) are the same at every evaluation: read and tokenized once
    val_batches: dict[str | None, list] = {}
    autocast_dtype = torch.bfloat16 if device.type == "cuda" else None

    def held_out() -> dict:
        nonlocal eval_enabled
        if not val_batches:
            for name, paths in source_files.items():
                val = TokenLoader(paths, str(run_tokenizer), seq_len, config.batch_size, rank=rank, world_size=world,
                                  seed=config.seed, split="val", val_fraction=config.val_fraction, epochs=1)
                val_batches[name] = list(itertools.islice(val, config.eval_batches))
        try:
            if not mixture:
                return evaluate(model, val_batches[None], token_bytes, config.eval_batches, device, autocast_dtype)
            # each source's held-out split, and all of them pooled (evaluate_sources' "overall")
            overall, per_source = evaluate_sources(model, val_batches, token_bytes, config.eval_batches, device,
                                                   autocast_dtype)
            return {**overall, "sources": per_source}
        except NoHeldOutData as error:  # the held-out split is empty: say so once and train on
            eval_enabled = False
            progress.note(f"mdr: no held-out evaluation ({error}): raise --val-fraction")
            return {}

    def checkpoint_now() -> None:
        ranks = gather({"loader": loader.state_dict(), "rng": rng_state()}, world)
        if master:
            save_checkpoint(layout.checkpoint, {
                "format": CHECKPOINT_FORMAT, "step": step, "config": dataclasses.asdict(config),
                "model_config": dataclasses.asdict(model_config), "model": unwrap(train_model).state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "ranks": ranks,
                "tokenizer_sha256": tokenizer.sha256,
            }, keep=config.keep_checkpoints)

    batches = iter(loader)
    window_start, window_steps = time.perf_counter(), 0
    loss_sum = torch.zeros(2, device=device)
    while step < config.max_steps:
        try:
            micro_batches = [next(batches) for _ in range(config.grad_accum)]
        except StopIteration:
            raise UsageError(f"rank {rank} has no training data: every document is in the held-out split, or "
                             "the shards are empty") from None
        lr = optimizer.param_groups[0]["lr"]
        loss, nll = train_step(train_model, optimizer, scheduler, micro_batches, config, device)
        step += 1
        window_steps += 1
        loss_sum += torch.stack([loss, nll])
        if step % config.log_interval == 0 or step == config.max_steps:
            mean_loss, mean_nll = (loss_sum / window_steps).tolist()  # the only host sync of the step
            elapsed = time.perf_counter() - window_start
            tokens_per_s = tokens_per_step * window_steps / elapsed
            record = {"split": "train", "step": step, "loss": mean_loss, "nll": mean_nll, "lr": lr,
                      "tokens_per_s": tokens_per_s, "tokens": step * tokens_per_step, "epoch": loader.epoch,
                      "flops": step * tokens_per_step * flops_per_token}
            if mixture and master:
                record["sources"] = _source_progress(loader, epoch_tokens)
            log.write(record)
            progress.show(step, mean_loss, mean_nll, tokens_per_s, elapsed / window_steps)
            loss_sum.zero_()
            window_steps, window_start = 0, time.perf_counter()
        pause_start = time.perf_counter()
        if step % config.eval_interval == 0 or step == config.max_steps:
            # "tokens" of evaluate() counts the evaluated tokens; trained_tokens places the record on a learning curve
            reached = {"step": step, "trained_tokens": step * tokens_per_step,
                       "flops": step * tokens_per_step * flops_per_token}
            if eval_enabled:
                last_eval = held_out()
                if last_eval:
                    log.write({"split": "val", **reached, **last_eval})
            for name, set_batches in eval_sets.items():
                last_sets[name] = evaluate(model, set_batches, token_bytes, None, device, autocast_dtype)
                log.write({"split": "eval", "set": name, **reached, **last_sets[name]})
        if step % config.checkpoint_interval == 0 or step == config.max_steps or step == stop_at:
            checkpoint_now()
        window_start += time.perf_counter() - pause_start  # evaluating and saving are not training time
        if step == stop_at:
            break
    progress.close()
    log.close()
    result = {**last_eval, "step": step, "eval_sets": last_sets}
    if mixture and master:
        result["mixture"] = _source_progress(loader, epoch_tokens)
    return result


def _source_progress(loader: MixtureLoader, epoch_tokens: dict[str, int]) -> dict[str, dict]:
    """Per source of a mixture: the tokens trained on so far (all ranks) and the epochs of the source they make
    (the stream taken, documents and end-of-document tokens, over one epoch's; None for a source without any)."""
    trained, taken = loader.source_tokens(), loader.source_stream_tokens()
    return {name: {"tokens": trained[name],
                   "epochs": taken[name] / epoch_tokens[name] if epoch_tokens.get(name) else None}
            for name in loader.names}
