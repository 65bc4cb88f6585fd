"""Recipes: YAML files naming the stages to run, in order, with their parameters.

A recipe is validated completely before anything runs: an unknown stage or key, a value of the wrong type or a
missing input gets a one-line `RecipeError` naming the problem (the CLI turns it into exit code 2).
"""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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
}

# Stages that still see raw HTML: their dropped documents are stored truncated in OUT/excluded/.
HTML_STAGES = {"url", "extract"}

TOP_LEVEL_KEYS = {"name", "description", "reader", "stages", "output"}


class RecipeError(ValueError):
    """A recipe or run request that cannot run; the message is one line, for the user."""


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

    @property
    def stage_keys(self) -> list[str]:
        return [stage.key for stage in self.stages]


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
    normalized = {
        "name": name,
        "reader": dataclasses.asdict(reader),
        "stages": [{s.key: dataclasses.asdict(s.config)} for s in stages],
        "output": dataclasses.asdict(output),
    }
    return Recipe(name, stages, reader, output, raw.get("description", ""), source, normalized)


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
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecipeError(f"{where}: expected a number, got {type(value).__name__} {value!r}")
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
