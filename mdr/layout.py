"""A run's output directory, the one place its layout is spelled, and the plan types that carry it to the phases.

    OUT/run.json              what this directory is a run of (recipe, inputs, tasks); a rerun must match it,
                              and its inputs must still have the sizes and modification times recorded there
    OUT/.lock                 locked by the `mdr run` writing OUT: a second one into OUT is refused
    OUT/data/*.parquet        kept documents (the only final output)
    OUT/excluded/<stage>/     documents each stage dropped, with reason and measured value
    OUT/taps/<stage>/         the documents a tapped stage forwarded (`mdr run --tap`), same schema as data/
    OUT/logs/<phase>/         the phase's logging dir: datatrove's stats/, completions/, logs/ and stats.json, the
                              reader's progress/, MinHash clustering's cluster_sizes.json
With dedup stages in the recipe, the filter phase writes OUT/filtered/ instead of OUT/data/, each dedup stage but the
last writes OUT/deduped/<stage>/, and their phases keep work files (signatures, pairs, removal lists, span lists)
in OUT/work/<stage>/ (the names inside are each stage's own). A tap on a stage whose output one of those folders
holds already (the last filter stage, a dedup stage) is that folder: run.json's "taps" maps each tapped stage to the
folder, relative to OUT, that holds its documents, and `tap_folders` reads it back.

`RunLayout` gives every one of these paths; nothing else in mdr spells them (tests/test_layout.py checks it). A
phase's logging dir is also opened by name through datatrove's DataFolder (local or remote): `task_stats_name` and
`task_log_name` give those names.

`TrainLayout` does the same for a training run's directory (`mdr train --out RUN`), `AblationLayout` for an
ablation's (`mdr ablate --out DIR`), `ScaleLayout` for a scaling sweep's (`mdr scale --out DIR`).

`Phase` and `DedupContext` are what the runner hands to the executors and to the dedup stages. This module imports
nothing but the standard library: the CLI, the dedup stages and the trainer import it without pulling in datatrove,
pyarrow or torch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mdr.pipeline.writer import WriterConfig

RUN_FILE = "run.json"
LOCK_FILE = ".lock"
DATA_DIR = "data"  # by name too, for an OUT that is an fsspec URL (`RunLayout` is local paths)

# Inside a phase's logging dir. datatrove's executors write stats/<rank>.json for every completed task,
# completions/<rank> to mark it done (what a resume skips) and, through mdr's task logger, logs/task_<rank>.log;
# mdr merges the stats into stats.json.
STATS_DIR = "stats"
COMPLETIONS_DIR = "completions"
TASK_LOGS_DIR = "logs"
MERGED_STATS_FILE = "stats.json"
PROGRESS_DIR = "progress"  # the reader's progress/<rank>.json, polled by `mdr run`'s progress line
CLUSTER_SIZES_FILE = "cluster_sizes.json"  # MinHash clustering's histogram {cluster size: clusters}


def task_stats_name(rank: int) -> str:
    """A task's stats file, relative to its phase's logging dir (datatrove's name)."""
    return f"{STATS_DIR}/{rank:05d}.json"


def task_log_name(rank: int) -> str:
    """A task's log file, relative to its phase's logging dir (datatrove's name)."""
    return f"{TASK_LOGS_DIR}/task_{rank:05d}.log"


@dataclass(frozen=True)
class RunLayout:
    """The paths of run directory `root` (OUT)."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @property
    def run_file(self) -> Path:
        return self.root / RUN_FILE

    @property
    def lock(self) -> Path:
        return self.root / LOCK_FILE

    @property
    def data(self) -> Path:
        """The kept documents: the last phase's output."""
        return self.root / DATA_DIR

    @property
    def filtered(self) -> Path:
        """The filter phase's output when dedup stages follow it."""
        return self.root / "filtered"

    def deduped(self, stage: str) -> Path:
        """The output of a dedup stage that another dedup stage follows."""
        return self.root / "deduped" / stage

    def tap(self, stage: str) -> Path:
        """Where a tap writes the documents `stage` forwards when no other folder of the run holds them."""
        return self.root / "taps" / stage

    @property
    def excluded_dir(self) -> Path:
        """Holds one folder per stage that dropped documents."""
        return self.root / "excluded"

    def excluded(self, stage: str) -> Path:
        return self.excluded_dir / stage

    @property
    def logs_dir(self) -> Path:
        """Holds one logging dir per phase."""
        return self.root / "logs"

    def logs(self, phase: str) -> Path:
        """The phase's datatrove logging dir."""
        return self.logs_dir / phase

    def stats(self, phase: str) -> Path:
        """The folder of the phase's per-task stats files."""
        return self.logs(phase) / STATS_DIR

    def completions(self, phase: str) -> Path:
        return self.logs(phase) / COMPLETIONS_DIR

    def progress(self, phase: str) -> Path:
        return self.logs(phase) / PROGRESS_DIR

    def cluster_sizes(self, phase: str) -> Path:
        return self.logs(phase) / CLUSTER_SIZES_FILE

    def work(self, stage: str) -> Path:
        """A dedup stage's work files."""
        return self.root / "work" / stage


def documents_folder(folder: Path) -> Path:
    """The folder of documents a directory given as data stands for: an `mdr run` OUT means its kept documents
    (data/, absent when the run kept none: then nothing, never the work files beside it), any other directory
    itself."""
    run = RunLayout(folder)
    return run.data if run.run_file.is_file() else folder


def tap_folders(layout: RunLayout) -> dict[str, Path]:
    """Each tapped stage of run `layout`, in recipe order, with the folder holding the documents it forwarded, as
    its run.json records them (`RunLayout.tap`, or filtered/, deduped/<stage>/, data/): what reads a run's taps
    (`mdr ablate --run`) needs no layout rule. Empty for a run without taps; FileNotFoundError without run.json.
    (A function, not a RunLayout method: those give paths without reading OUT.)"""
    recorded = json.loads(layout.run_file.read_text()).get("taps") or {}
    return {stage: layout.root / folder for stage, folder in recorded.items()}


@dataclass
class Phase:
    """A list of datatrove steps run as `tasks` tasks, with a logging dir of its own (`RunLayout.logs`)."""

    name: str
    pipeline: list
    tasks: int
    logging_dir: str


@dataclass
class DedupContext:
    """Where a dedup stage reads and writes, and how many tasks its per-shard phases run."""

    layout: RunLayout  # OUT
    input_folder: str  # the shards the stage deduplicates
    output_folder: str  # where it writes the documents it keeps
    tasks: int  # tasks of the phases that read the shards (the run's --tasks)
    input_files: list[str]  # the run's inputs, in order: DocumentOrder
    writer: WriterConfig | None = None  # of the shards the stage writes; None: the writer's defaults

    def work_dir(self, stage: str) -> str:
        return str(self.layout.work(stage))

    def logging_dir(self, phase: str) -> str:
        return str(self.layout.logs(phase))


@dataclass(frozen=True)
class TrainLayout:
    """The paths of training run directory `root` (`mdr train --out RUN`), which eval, sample, export and the sweeps
    built on training runs find their files by:

        RUN/ckpt.pt         model, optimizer, scheduler, every rank's RNG states and loader position, step and config
        RUN/checkpoints/    with keep_checkpoints=K, the last K checkpoints as step_NNNNNN.pt (hard links of
                            ckpt.pt's); a resume from an older step moves those of later steps to abandoned/ in it
        RUN/metrics.jsonl   one line per logged step and per held-out evaluation
        RUN/tensorboard/    the same scalars as TensorBoard event files
        RUN/manifest.json   what reproduces the run (LLM360): config, git commit, tokenizer and shard hashes, versions
        RUN/tokenizer.json  the tokenizer, so the run directory is all that eval, sample and export need
        RUN/tokenizer.settings.json  what a tokenizer trained into the run was trained with (vocabulary size, shards)
    """

    root: Path

    TOKENIZER = "tokenizer.json"  # also the name `mdr tokenizer train` writes into a directory, and loads from one

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @property
    def checkpoint(self) -> Path:
        return self.root / "ckpt.pt"

    @property
    def checkpoints(self) -> Path:
        """The kept checkpoints (keep_checkpoints=K)."""
        return self.root / "checkpoints"

    def kept_checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"step_{step:06d}.pt"

    def kept_checkpoints(self) -> list[tuple[int, Path]]:
        """(step, path) of every kept checkpoint, oldest step first."""
        found = [(int(match.group(1)), path) for path in self.checkpoints.glob("step_*.pt")
                 if (match := re.fullmatch(r"step_(\d+)\.pt", path.name))]
        return sorted(found)

    @property
    def abandoned(self) -> Path:
        """Kept checkpoints past the step a resume went back to."""
        return self.checkpoints / "abandoned"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def tokenizer(self) -> Path:
        return self.root / self.TOKENIZER

    @property
    def tokenizer_settings(self) -> Path:
        return self.root / "tokenizer.settings.json"

    @property
    def written(self) -> tuple[Path, ...]:
        """What a run writes besides its checkpoints: what a failed fresh start removes, and what, found without a
        checkpoint, marks RUN as holding another run's leftovers."""
        return self.tokenizer, self.tokenizer_settings, self.manifest, self.metrics, self.tensorboard


@dataclass(frozen=True)
class AblationLayout:
    """The paths of an ablation directory (`mdr ablate --out DIR`):

        DIR/arms/<arm>/train.parquet    the arm's training documents (held-out and decontaminated ids removed)
        DIR/arms/<arm>/tokens/          those documents tokenized once with DIR/tokenizer.json (a TokenLayout):
                                        what every run of the arm trains on
        DIR/eval/<set>.parquet          each evaluation set: heldout-first, heldout-last and the --eval sets
        DIR/eval/continuation.jsonl     with --continuation Q: the Q multiple-choice questions built from heldout-last
        DIR/tokenizer-sample.parquet    the pooled sample of every arm's training documents the tokenizer fits
        DIR/tokenizer.json              the one tokenizer every run uses
        DIR/runs/<arm>/seed<k>/         the training run of an arm and seed (a TrainLayout), and its result.json
        DIR/ablation.json               the arms, the runs' metrics and what the seeds say about them
        DIR/ablation.html               the same as a page: learning curves, final bits per byte with error bars
        DIR/run/                        with `--input WARCS --recipe R`: the `mdr run` OUT the ablation curates,
                                        tapped at every arm (a RunLayout); the ablation then reads it as --run
    """

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    def arm_data(self, arm: str) -> Path:
        return self.root / "arms" / arm / "train.parquet"

    def arm_tokens(self, arm: str) -> Path:
        """The arm's token directory (`mdr tokenize`'s output, a TokenLayout)."""
        return self.root / "arms" / arm / "tokens"

    def eval_set(self, name: str) -> Path:
        return self.root / "eval" / f"{name}.parquet"

    @property
    def continuation_task(self) -> Path:
        """The continuation task's questions, a task file (train/tasks.py): inspectable, and the same on a rerun."""
        return self.root / "eval" / "continuation.jsonl"

    @property
    def tokenizer_sample(self) -> Path:
        return self.root / "tokenizer-sample.parquet"

    @property
    def tokenizer(self) -> Path:
        return self.root / TrainLayout.TOKENIZER

    def run(self, arm: str, seed: int) -> Path:
        return self.root / "runs" / arm / f"seed{seed}"

    def result(self, arm: str, seed: int) -> Path:
        """Written when the run has trained and been evaluated: a run with one is not trained again."""
        return self.run(arm, seed) / "result.json"

    @property
    def ablation_file(self) -> Path:
        return self.root / "ablation.json"

    @property
    def page(self) -> Path:
        return self.root / "ablation.html"

    @property
    def curation(self) -> Path:
        """The run `mdr ablate --input` curates: a second invocation finds it complete, a killed one resumes it."""
        return self.root / "run"


@dataclass(frozen=True)
class ScaleLayout:
    """The paths of a scaling sweep's directory (`mdr scale --out DIR`):

        DIR/data/train.parquet          the documents every run trains on
        DIR/data/heldout.parquet        the documents every run is evaluated on (held out by a hash of the text)
        DIR/data/train-tokens/          train.parquet tokenized once with DIR/tokenizer.json (a TokenLayout): what
                                        every run trains on
        DIR/tokenizer.json              the one tokenizer every run uses, fitted on data/train.parquet
        DIR/tokenizer.settings.json     what it was fitted with (vocabulary size, the split's hash): kept on a rerun
        DIR/runs/<name>/                each run of the grid (a TrainLayout), and its result.json once evaluated
        DIR/scaling.json                the runs, the fits, the validation and the compute-optimal predictions
        DIR/scaling.html                the same as a page: IsoFLOP profiles, loss against compute, residuals
    """

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @property
    def train_data(self) -> Path:
        return self.root / "data" / "train.parquet"

    @property
    def heldout_data(self) -> Path:
        return self.root / "data" / "heldout.parquet"

    @property
    def train_tokens(self) -> Path:
        """The training documents' token directory (`mdr tokenize`'s output, a TokenLayout)."""
        return self.root / "data" / "train-tokens"

    @property
    def tokenizer(self) -> Path:
        return self.root / TrainLayout.TOKENIZER

    @property
    def tokenizer_settings(self) -> Path:
        return self.root / "tokenizer.settings.json"

    def run(self, name: str) -> Path:
        return self.root / "runs" / name

    def result(self, name: str) -> Path:
        """Written when the run has trained and been evaluated: a run with one is not trained again."""
        return self.run(name) / "result.json"

    @property
    def scaling_file(self) -> Path:
        return self.root / "scaling.json"

    @property
    def page(self) -> Path:
        return self.root / "scaling.html"


@dataclass(frozen=True)
class TokenLayout:
    """The paths of a token directory (`mdr tokenize SHARDS --tokenizer T --out TOK`, read by `mdr train --data TOK`):

        TOK/tokens.json                 the manifest: tokenizer sha256, dtype, token and document counts, and each
                                        source shard (path, sha256, size) with its files below; written last
        TOK/tokenizer.json              a copy of the tokenizer the files were made with (`mdr train` uses it)
        TOK/shards/NNNNN.bin            source shard NNNNN's tokens, raw, in the manifest's dtype: each document's
                                        tokens followed by the end-of-document token, in the shard's row order
        TOK/shards/NNNNN.offsets.npy    int64, rows + 1: row i's tokens are bin[offsets[i]:offsets[i + 1]] (a null
                                        text: none, not even the end-of-document token)
        TOK/shards/NNNNN.hashes.npy     uint64, rows: xxh64 of each row's text (the held-out split's hash)
        TOK/shards/NNNNN.json           the shard's manifest entry, written after its files: a rerun skips the shard
        TOK/logs/                       the tokenize phase's logging dir (datatrove's stats/, completions/, logs/)
    """

    root: Path
    MANIFEST = "tokens.json"

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @property
    def manifest(self) -> Path:
        return self.root / self.MANIFEST

    @property
    def tokenizer(self) -> Path:
        return self.root / TrainLayout.TOKENIZER

    @property
    def shards(self) -> Path:
        return self.root / "shards"

    @staticmethod
    def shard_name(index: int) -> str:
        return f"{index:05d}"

    def tokens(self, name: str) -> Path:
        return self.shards / f"{name}.bin"

    def offsets(self, name: str) -> Path:
        return self.shards / f"{name}.offsets.npy"

    def hashes(self, name: str) -> Path:
        return self.shards / f"{name}.hashes.npy"

    def entry(self, name: str) -> Path:
        return self.shards / f"{name}.json"

    @property
    def logs(self) -> Path:
        """The tokenize phase's logging dir, cleared at each start: a shard's entry, not a completion, says it is
        done (a completion would outlive a source shard replaced since)."""
        return self.root / "logs"

    @classmethod
    def holds_tokens(cls, path) -> bool:
        """Whether `path` is a token directory (one with a manifest)."""
        return (Path(path) / cls.MANIFEST).is_file()
