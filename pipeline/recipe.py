"""Recipes: YAML files naming the stages to run, in order, with their parameters.

A recipe is validated completely before anything runs: an unknown stage or key, a value of the wrong type or out of
its range, or a missing input gets a one-line `RecipeError` naming the problem (the CLI turns it into exit code 2).

Valid values are declared once, next to each option, in its config dataclass: `option(default, range="[0, 1]")` puts
the range (and `keys`, `nonempty`, `at_least_one`, `path`) in the field's metadata, and `check_options` checks every
declared field, NaN and infinity, and the class's own `check_combination` hook for rules across fields. Config
classes inherit `Options`, whose `__post_init__` runs it, so a config built in Python is checked as one read from a
recipe. Why field metadata and not pydantic: pydantic is not a dependency of mdr (nor installed), and the configs
stay plain dataclasses that pickle to datatrove's workers unchanged. `check_resources` then compares what a
configuration predictably allocates (MinHash signatures, read buffers, open files) with the machine before a run.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import importlib
import math
import os
import re
import resource
import types
import typing
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mdr.errors import UsageError
from mdr.formatting import size

RECIPES_DIR = Path(__file__).parent / "recipes"

# stage key -> (module, stage class, config class). Order here is only for listing; a recipe sets the run order.
STAGE_REGISTRY: dict[str, tuple[str, str, str]] = {
    "url": ("mdr.filters.url", "URLStage", "URLConfig"),
    "extract": ("mdr.filters.extraction", "ExtractionStage", "ExtractionConfig"),
    "language": ("mdr.filters.language", "LanguageStage", "LanguageConfig"),
    "repetition": ("mdr.filters.repetition", "RepetitionStage", "RepetitionConfig"),
    "quality": ("mdr.filters.quality", "QualityStage", "QualityConfig"),
    "lines": ("mdr.filters.lines", "LinesStage", "LinesConfig"),
    "c4": ("mdr.filters.fineweb", "C4Stage", "C4Config"),
    "fineweb_quality": ("mdr.filters.fineweb", "FineWebQualityStage", "FineWebQualityConfig"),
    # Dedup stages: their class lays out phases of their own (`build_phases`); they run after every filter.
    "minhash": ("mdr.dedup.minhash", "MinhashStage", "MinhashConfig"),
    "exact_substring": ("mdr.dedup.exact_substring", "ExactSubstringStage", "ExactSubstringConfig"),
    "url_dedup": ("mdr.dedup.url_dedup", "UrlDedupStage", "UrlDedupConfig"),
    # Runs as a phase of its own too (after the filters; FineWeb: after MinHash), replacing text, dropping nothing.
    "pii": ("mdr.filters.pii", "PIIStage", "PIIConfig"),
}

# Stages that still see raw HTML: their dropped documents are stored truncated in OUT/excluded/.
HTML_STAGES = {"url", "extract"}

TOP_LEVEL_KEYS = {"name", "description", "reader", "stages", "output", "taps"}

# The stage after which documents are text: a tap on a stage before it would hold HTML (`check_taps`).
EXTRACT_STAGE = "extract"

# The most tasks of a phase (`mdr run --tasks`, a dedup stage's own task counts such as exact_substring.partitions):
# each task keeps log, stats and progress files per phase, and the executors list every rank, so more is a typo
# (RW's largest runs used thousands per dump).
MAX_TASKS = 1_000_000


class RecipeError(UsageError):
    """A recipe or run request that cannot run; the message is one line, for the user."""


class OptionError(ValueError):
    """An option out of its declared range: `key` is the option (`top_ngram_char_frac[2]` for a mapping's entry),
    `problem` what is wrong with it."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"{key} {problem}")
        self.key, self.problem = key, problem


_INTERVAL = re.compile(r"^\s*([\[(])\s*([^,\s]+)\s*,\s*([^\])\s]+)\s*([\])])\s*$")


class Range:
    """A closed, open or half-open interval, written as in mathematics: "[0, 1]", "(0, 1]", "[1, inf)"."""

    def __init__(self, text: str):
        match = _INTERVAL.match(text)
        if not match:
            raise ValueError(f"not an interval: {text!r}")
        opening, low, high, closing = match.groups()
        self.text = text
        self.low, self.high, self.low_open, self.high_open = float(low), float(high), opening == "(", closing == ")"

    def __contains__(self, value) -> bool:
        if isinstance(value, float) and math.isnan(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        return above and (value < self.high if self.high_open else value <= self.high)

    def describe(self) -> str:
        if math.isinf(self.high):
            low = str(int(self.low)) if self.low.is_integer() else str(self.low)
            return f"greater than {low}" if self.low_open else f"at least {low}"
        return f"in {self.text}"


def option(default=MISSING, *, default_factory=MISSING, range: str | None = None, keys: str | None = None,
           nonempty: bool = False, at_least_one: bool = False, path: str | None = None):
    """A config dataclass field with its valid values, checked by `check_options`:
    - `range`: an interval for a number, for each number of a tuple, or for each value of a mapping;
    - `keys`: an interval for each key of a mapping;
    - `nonempty`: a string, or each string of a tuple, must not be empty;
    - `at_least_one`: a tuple must not be empty;
    - `path`: "file" or "dir": a local path that must exist (URLs with "://" are not checked).
    None, where the type allows it, always passes: it turns the option off. Rules that need other options or the
    machine (a model's languages, a codec's levels) go in the class's `check_combination`."""
    declared = {"range": range and Range(range), "keys": keys and Range(keys), "nonempty": nonempty,
                "at_least_one": at_least_one, "path": path}
    metadata = {name: value for name, value in declared.items() if value}
    return field(default=default, default_factory=default_factory, metadata=metadata)


class Options:
    """Base of the stage config dataclasses: checks every option when the config is made (`check_options`)."""

    def __post_init__(self):
        check_options(self)

    def check_combination(self) -> None:
        """Rules across options (e.g. a maximum not below its minimum); raises OptionError."""


def check_order(config, low: str, high: str) -> None:
    """A cross-field rule: option `high` is not below option `low` (when both are set)."""
    low_value, high_value = getattr(config, low), getattr(config, high)
    if low_value is not None and high_value is not None and high_value < low_value:
        raise OptionError(high, f"must be at least {low} ({low_value}), got {high_value}")


def check_options(config) -> None:
    """Checks every field of a config dataclass against its `option` metadata, finite floats everywhere, then the
    class's `check_combination`. Raises OptionError naming the option."""
    for spec in dataclasses.fields(config):
        value = getattr(config, spec.name)
        if value is None:
            continue
        meta = spec.metadata
        if isinstance(value, dict):
            keys = meta.get("keys")
            for key, item in value.items():
                if keys is not None and isinstance(key, (int, float)) and key not in keys:
                    raise OptionError(spec.name, f"keys must be {keys.describe()}, got {key!r}")
                _check_value(f"{spec.name}[{key}]", item, meta)
        elif isinstance(value, (tuple, list, set, frozenset)):
            if meta.get("at_least_one") and not value:
                raise OptionError(spec.name, "must not be empty")
            for index, item in enumerate(value):
                _check_value(f"{spec.name}[{index}]", item, meta)
        else:
            _check_value(spec.name, value, meta)
    config.check_combination()


def _check_value(key: str, value, meta) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise OptionError(key, f"must be a finite number, got {value}")
    bounds = meta.get("range")
    if bounds is not None and isinstance(value, (int, float)) and not isinstance(value, bool) and value not in bounds:
        raise OptionError(key, f"must be {bounds.describe()}, got {value!r}")
    if isinstance(value, str):
        if meta.get("nonempty") and not value:
            raise OptionError(key, "must not be an empty string")
        kind = meta.get("path")
        if kind and "://" not in value:
            exists = os.path.isdir(value) if kind == "dir" else os.path.isfile(value)
            if not exists:
                raise OptionError(key, f"names no {'folder' if kind == 'dir' else 'file'}: {value!r}")


@dataclass
class StageSpec:
    key: str
    config: Any  # the stage's config dataclass instance

    @property
    def stage_class(self) -> type:
        module, stage_class, _ = STAGE_REGISTRY[self.key]
        return getattr(importlib.import_module(module), stage_class)

    @property
    def is_dedup(self) -> bool:
        """A dedup stage runs as phases of its own (`build_phases(config, DedupContext)`), after the filter phase."""
        return hasattr(self.stage_class, "build_phases")

    def build(self, **kwargs):
        return self.stage_class(config=self.config, **kwargs)

    def build_phases(self, context) -> list:
        return self.stage_class.build_phases(self.config, context)


@dataclass
class Recipe:
    name: str
    stages: list[StageSpec]
    reader: Any
    output: Any
    description: str = ""
    source: str = ""  # where it was loaded from
    raw: dict = field(default_factory=dict)  # the validated mapping, recorded in OUT/run.json
    # Stages whose forwarded documents the run also keeps (`taps:`, `mdr run --tap`), in recipe order. Not in `raw`:
    # run.json records them beside the recipe, so the same taps asked by the recipe or by --tap are the same run.
    taps: tuple[str, ...] = ()

    @property
    def stage_keys(self) -> list[str]:
        return [stage.key for stage in self.stages]

    def with_taps(self, names: list[str], where: str = "--tap") -> Recipe:
        """This recipe with `names` tapped too (`mdr run --tap`), each checked by `check_taps`."""
        added = check_taps(names, self.stage_keys, where, duplicates=True)
        return dataclasses.replace(self, taps=tuple(k for k in self.stage_keys if k in self.taps or k in added))


def check_taps(names: Any, stage_keys: list[str], where: str, duplicates: bool = False) -> tuple[str, ...]:
    """The stages of `names` in recipe order, or a RecipeError: a tap names a stage of this recipe that forwards
    text. `read` and the stages before `extract` forward HTML documents, which no trainer can use (and read's are
    the raw records), so they are refused; a recipe without `extract` (WET input) has text from the reader on.
    A name given twice is refused unless `duplicates` (--tap repeated, or naming a tap the recipe has)."""
    if not isinstance(names, (list, tuple)) or not all(isinstance(name, str) for name in names):
        raise RecipeError(f"{where}: expected a list of stage names, got {names!r}")
    from mdr.pipeline.reader import WarcRecordReader

    read = WarcRecordReader.name  # the reader's step: a row of the funnel, not a stage of the recipe
    first_text = stage_keys.index(EXTRACT_STAGE) if EXTRACT_STAGE in stage_keys else 0
    for name in names:
        if name == read:
            raise RecipeError(f"{where}: cannot tap {read!r}: the reader forwards raw HTML records, not text; "
                              f"tap {EXTRACT_STAGE!r} or a later stage")
        if name not in STAGE_REGISTRY:
            raise RecipeError(f"{where}: unknown stage {name!r} (known: {', '.join(STAGE_REGISTRY)})")
        if name not in stage_keys:
            raise RecipeError(f"{where}: stage {name!r} is not in this recipe (its stages: {', '.join(stage_keys)})")
        if stage_keys.index(name) < first_text:
            raise RecipeError(f"{where}: cannot tap {name!r}: it runs before {EXTRACT_STAGE!r} and forwards HTML, "
                              f"not text; tap {EXTRACT_STAGE!r} or a later stage")
        if not duplicates and names.count(name) > 1:
            raise RecipeError(f"{where}: stage {name!r} appears twice")
    return tuple(key for key in stage_keys if key in names)


# cgroup memory files (kernel Documentation/admin-guide/cgroup-v2.rst, cgroup-v1/memory.rst): v2 writes "max" for
# no limit, v1 a huge number (PAGE_COUNTER_MAX × page size, 9223372036854771712 on x86-64); anything above this is
# taken as no limit.
_NO_LIMIT = 1 << 60
_CGROUP_FILES = {  # version -> (limit, usage, memory.stat key of reclaimable page cache)
    2: ("memory.max", "memory.current", "inactive_file"),
    1: ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"),
}


def available_memory_bytes(root: str | os.PathLike = "/") -> int:
    """The memory this process can still allocate: MemAvailable (physical memory when /proc/meminfo is unreadable;
    psutil is not a dependency), or less where a cgroup limits it (a container, a Slurm job): the cgroup's limit
    minus its current usage, at each level from the process's cgroup (/proc/self/cgroup) up to the root of the
    mount, whichever leaves least. `root` is the filesystem root, for tests."""
    root = Path(root)
    try:
        memory = next(int(line.split()[1]) * 1024 for line in (root / "proc/meminfo").read_text().splitlines()
                      if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError, IndexError):
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    for directory, version in _memory_cgroup_dirs(root):
        limit_file, usage_file, cache_key = _CGROUP_FILES[version]
        limit = _read_int(directory / limit_file)
        if limit is None or limit >= _NO_LIMIT:
            continue
        usage = _read_int(directory / usage_file) or 0
        try:  # page cache the kernel reclaims before it OOM-kills (what docker stats and cAdvisor subtract)
            stat = dict(line.split() for line in (directory / "memory.stat").read_text().splitlines())
            usage -= min(usage, int(stat.get(cache_key, 0)))
        except (OSError, ValueError):
            pass
        memory = min(memory, max(0, limit - usage))
    return memory


def _memory_cgroup_dirs(root: Path) -> list[tuple[Path, int]]:
    """The directories holding this process's memory cgroup files, with the cgroup version: its own cgroup and
    every ancestor up to the mount's root (a Slurm job sets its limit above the step's cgroup; a container without
    a cgroup namespace lists a host path its mount does not have, so the mount's root is read too)."""
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    entries = [line.split(":", 2) for line in lines if line.count(":") >= 2]
    # v1's memory controller, when mounted, holds the limits (a hybrid system also has an empty v2 hierarchy)
    v1 = [path for _, controllers, path in entries if "memory" in controllers.split(",")]
    v2 = [path for number, controllers, path in entries if number == "0" and not controllers]
    mount, version, paths = ((root / "sys/fs/cgroup/memory", 1, v1) if v1 else (root / "sys/fs/cgroup", 2, v2))
    directories = []
    for path in paths[:1]:
        relative = Path(path.strip()).relative_to("/") if path.strip().startswith("/") else Path(path.strip())
        directories += [mount / parent for parent in [relative, *relative.parents]]
    if mount not in directories:
        directories.append(mount)
    return [(directory, version) for directory in directories if directory.is_dir()]


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


# A routing task's open files beside its Parquet writers: the interpreter, libraries, logs, the shard it reads.
_OPEN_FILES_MARGIN = 64


def check_resources(recipe: Recipe, tasks: int, concurrent: int, memory_limit: int | None = None,
                    where: str = "the memory available here", open_files_limit: int | None = None) -> None:
    """Refuses, before anything runs, a configuration whose predictable memory does not fit: what one task of a
    stage allocates whatever its input (`task_memory_bytes` of its config: MinHash signatures, read buffers) times
    the tasks that run at once (`concurrent`, at most `tasks`), against `memory_limit` (by default what this process
    can still allocate, `available_memory_bytes`: MemAvailable or a container's or Slurm job's cgroup limit).
    With `open_files_limit`, also the files an exact-substring routing task keeps open, one per partition.
    Memory that grows with the input (documents per task, text per partition) is not predicted here."""
    limit = available_memory_bytes() if memory_limit is None else memory_limit
    at_once = max(1, min(concurrent, tasks))
    configs = [("reader", recipe.reader)] + [(stage.key, stage.config) for stage in recipe.stages]
    for key, config in configs:
        estimate = getattr(config, "task_memory_bytes", None)
        if estimate is None:
            continue
        total = estimate() * at_once
        if total > limit:
            names = config.memory_options
            values = ", ".join(f"{name} {getattr(config, name):,}" for name in names)
            tasks_note = f", {size(total)} for the {at_once} tasks run at once" if at_once > 1 else ""
            lower = ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
            workers = ", or --workers" if at_once > 1 else ""
            raise RecipeError(f"{key} ({values}) needs about {size(estimate())} per task{tasks_note}, more than "
                              f"{where} ({size(limit)}): lower {key}.{lower}{workers}")
    if open_files_limit is not None:
        for stage in recipe.stages:
            partitions = getattr(stage.config, "partitions", None)
            if stage.key == "exact_substring" and partitions > 1 and partitions + _OPEN_FILES_MARGIN > open_files_limit:
                most = open_files_limit - _OPEN_FILES_MARGIN
                raise RecipeError(f"exact_substring.partitions {partitions:,}: a routing task keeps a file open per "
                                  f"partition, over this process's open-file limit ({open_files_limit:,}, ulimit -n); "
                                  f"use at most {most:,} partitions or raise the limit")


def open_files_limit() -> int:
    """The soft limit on this process's open files (RLIMIT_NOFILE), which its task processes inherit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 30


def builtin_recipes() -> list[str]:
    return sorted(path.stem for path in RECIPES_DIR.glob("*.yaml"))


def recipe_path(name_or_path: str) -> Path:
    """A built-in recipe name (`refinedweb`, `fineweb`) or a path to a YAML file."""
    if (RECIPES_DIR / f"{name_or_path}.yaml").is_file() and "/" not in name_or_path:
        return RECIPES_DIR / f"{name_or_path}.yaml"
    path = Path(name_or_path)
    if not path.is_file():
        raise RecipeError(
            f"recipe {name_or_path!r} is neither a built-in recipe ({', '.join(builtin_recipes())}) nor a YAML file"
        )
    return path


def load_recipe(name_or_path: str) -> Recipe:
    path = recipe_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise RecipeError(f"{path}: not valid YAML{where}: {getattr(error, 'problem', error)}") from None
    return parse_recipe(raw, source=str(path))


def parse_recipe(raw: Any, source: str = "<recipe>") -> Recipe:
    from mdr.pipeline.reader import ReaderConfig
    from mdr.pipeline.writer import WriterConfig

    if not isinstance(raw, dict):
        raise RecipeError(f"{source}: a recipe is a mapping with keys {sorted(TOP_LEVEL_KEYS)}")
    unknown = set(raw) - TOP_LEVEL_KEYS
    if unknown:
        raise RecipeError(f"{source}: unknown key {sorted(unknown)[0]!r} (allowed: {', '.join(sorted(TOP_LEVEL_KEYS))})")
    stages_raw = raw.get("stages")
    if not isinstance(stages_raw, list) or not stages_raw:
        raise RecipeError(f"{source}: 'stages' must be a non-empty list such as '- url: {{}}'")
    stages = []
    for index, entry in enumerate(stages_raw):
        where = f"{source}: stages[{index}]"
        if isinstance(entry, str):
            entry = {entry: {}}
        if not isinstance(entry, dict) or len(entry) != 1:
            raise RecipeError(f"{where}: each stage is a one-key mapping '<stage>: {{options}}'")
        (key, options), = entry.items()
        if key not in STAGE_REGISTRY:
            raise RecipeError(f"{where}: unknown stage {key!r} (known: {', '.join(STAGE_REGISTRY)})")
        if key in [s.key for s in stages]:
            raise RecipeError(f"{where}: stage {key!r} appears twice")
        module, _, config_class = STAGE_REGISTRY[key]
        config_type = getattr(importlib.import_module(module), config_class)
        stage = StageSpec(key, build_config(config_type, options, f"{where}.{key}"))
        if stages and stages[-1].is_dedup and not stage.is_dedup:
            raise RecipeError(f"{where}: filter stage {key!r} after dedup stage {stages[-1].key!r}: "
                              f"dedup stages run after every filter, list them last")
        stages.append(stage)
    reader = build_config(ReaderConfig, raw.get("reader"), f"{source}: reader")
    output = build_config(WriterConfig, raw.get("output"), f"{source}: output")
    name = raw.get("name", Path(source).stem)
    if not isinstance(name, str):
        raise RecipeError(f"{source}: name: expected a string")
    if not isinstance(raw.get("description", ""), str):
        raise RecipeError(f"{source}: description: expected a string")
    normalized = {
        "name": name,
        "reader": dataclasses.asdict(reader),
        "stages": [{s.key: dataclasses.asdict(s.config)} for s in stages],
        "output": dataclasses.asdict(output),
    }
    taps = raw.get("taps")
    taps = check_taps([] if taps is None else taps, [s.key for s in stages], f"{source}: taps")
    return Recipe(name, stages, reader, output, raw.get("description", ""), source, normalized, taps)


def build_config(config_type: type, options: Any, where: str):
    """Instantiates a config dataclass from a mapping, checking every key and value type."""
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise RecipeError(f"{where}: expected a mapping of options, got {type(options).__name__}")
    fields = {f.name: f for f in dataclasses.fields(config_type) if f.init}
    hints = typing.get_type_hints(config_type)
    values = {}
    for key, value in options.items():
        if key not in fields:
            raise RecipeError(f"{where}: unknown option {key!r} (options: {', '.join(fields)})")
        values[key] = _coerce(value, hints[key], f"{where}.{key}")
    try:
        return config_type(**values)
    except OptionError as error:  # a declared range (check_options, run by the config's __post_init__)
        raise RecipeError(f"{where}.{error.key}: {error.problem}") from None
    except (TypeError, ValueError) as error:  # a config's own __post_init__ checks
        raise RecipeError(f"{where}: {error}") from None


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Checks `value` against a type hint; converts YAML lists to tuples where the hint asks for a tuple."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except RecipeError as error:
                errors.append(error)
        raise errors[0]
    if origin is typing.Literal:
        if value not in args:
            raise RecipeError(f"{where}: expected one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin in (list, tuple, set, frozenset):
        if not isinstance(value, (list, tuple)):
            raise RecipeError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        item_hint = args[0] if args else Any
        items = [_coerce(item, item_hint, f"{where}[{i}]") for i, item in enumerate(value)]
        return origin(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: expected a mapping, got {type(value).__name__}")
        key_hint, value_hint = args if args else (Any, Any)
        return {_coerce(key, key_hint, f"{where} key {key!r}"): _coerce(item, value_hint, f"{where}[{key}]")
                for key, item in value.items()}
    if origin is collections.abc.Callable:  # a Python function: a recipe names it as a dotted-path string instead
        if not callable(value):
            raise RecipeError(f"{where}: expected a function, got {type(value).__name__} {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecipeError(f"{where}: expected a number, got {type(value).__name__} {value!r}")
        if not math.isfinite(value):  # YAML's .nan and .inf
            raise RecipeError(f"{where}: expected a finite number, got {value}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecipeError(f"{where}: expected an integer, got {type(value).__name__} {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise RecipeError(f"{where}: expected true or false, got {type(value).__name__} {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise RecipeError(f"{where}: expected a string, got {type(value).__name__} {value!r}")
        return value
    if isinstance(hint, type) and not isinstance(value, hint):
        raise RecipeError(f"{where}: expected {hint.__name__}, got {type(value).__name__} {value!r}")
    return value
