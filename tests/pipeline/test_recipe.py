import dataclasses

import pytest
import yaml

from mdr.pipeline.recipe import (
    STAGE_REGISTRY,
    RecipeError,
    builtin_recipes,
    load_recipe,
    parse_recipe,
)
from tests.pipeline.commands import mdr


def test_builtin_recipes_load_and_list_their_stages():
    assert {"refinedweb", "fineweb"} <= set(builtin_recipes())
    refinedweb = load_recipe("refinedweb")
    assert refinedweb.stage_keys == ["url", "extract", "language", "repetition", "quality", "lines", "minhash",
                                     "exact_substring", "url_dedup"]
    fineweb = load_recipe("fineweb")
    assert fineweb.stage_keys == ["url", "extract", "language", "repetition", "quality", "c4", "fineweb_quality",
                                  "minhash", "pii"]  # datatrove's examples/fineweb.py: PIIFormatter after MinHash
    minhash = fineweb.stages[-2].config
    assert (minhash.num_bands, minhash.rows_per_band) == (14, 8)  # FineWeb's preset (spec §11.3)


def test_dedup_stages_come_after_the_filters():
    message = _error({"stages": [{"minhash": {}}, {"url": {}}]})
    assert message == ("r.yaml: stages[1]: filter stage 'url' after dedup stage 'minhash': dedup stages run after "
                       "every filter, list them last")


def test_refinedweb_recipe_states_the_paper_defaults():
    """The refinedweb YAML is what a user copies: every value in it equals the config dataclass default."""
    raw = yaml.safe_load(open(load_recipe("refinedweb").source))
    recipe = load_recipe("refinedweb")
    for entry, stage in zip(raw["stages"], recipe.stages):
        (key, options), = entry.items()
        defaults = type(stage.config)()
        for option, value in (options or {}).items():
            default = getattr(defaults, option)
            assert getattr(stage.config, option) == default, f"{key}.{option} differs from its default"


def _error(raw) -> str:
    with pytest.raises(RecipeError) as info:
        parse_recipe(raw, source="r.yaml")
    message = str(info.value)
    assert "\n" not in message
    return message


def test_unknown_stage_is_named():
    assert "unknown stage 'urls'" in _error({"stages": [{"urls": {}}]})


def test_unknown_option_is_named():
    message = _error({"stages": [{"language": {"treshold": 0.5}}]})
    assert "stages[0].language" in message and "unknown option 'treshold'" in message


def test_wrong_type_is_named():
    message = _error({"stages": [{"language": {"threshold": "high"}}]})
    assert "language.threshold" in message and "expected a number" in message


def test_bool_is_not_a_number_and_int_is_a_float():
    assert "expected a number" in _error({"stages": [{"language": {"threshold": True}}]})
    recipe = parse_recipe({"stages": [{"language": {"threshold": 1}}]})
    assert recipe.stages[0].config.threshold == 1.0


def test_unknown_top_level_key_and_empty_stages():
    assert "unknown key 'stage'" in _error({"stage": []})
    assert "non-empty list" in _error({"stages": []})


def test_duplicate_stage_rejected():
    assert "appears twice" in _error({"stages": ["url", "url"]})


def test_every_registered_config_has_defaults():
    recipe = parse_recipe({"stages": [{key: {}} for key in STAGE_REGISTRY]})
    for stage in recipe.stages:
        assert dataclasses.is_dataclass(stage.config)


def test_cli_bad_recipe_exits_2_with_one_line_and_writes_nothing(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("stages:\n  - language: {threshold: high}\n")
    warc = tmp_path / "in.warc.gz"
    warc.write_bytes(b"")
    out = tmp_path / "out"
    result = mdr("run", str(recipe), "--input", str(warc), "--output", str(out))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "threshold" in result.stderr
    assert not out.exists()


def test_cli_missing_input_exits_2(tmp_path):
    out = tmp_path / "out"
    result = mdr("run", "refinedweb", "--input", str(tmp_path / "nope.warc.gz"), "--output", str(out))
    assert result.returncode == 2 and "does not exist" in result.stderr
    assert not out.exists()


def test_cli_unknown_recipe_exits_2(tmp_path):
    result = mdr("run", "refinedwob", "--input", str(tmp_path), "--output", str(tmp_path / "o"))
    assert result.returncode == 2 and "refinedwob" in result.stderr


def test_cli_recipes_prints_a_loadable_recipe(tmp_path):
    result = mdr("recipes", "refinedweb")
    assert result.returncode == 0
    copy = tmp_path / "mine.yaml"
    copy.write_text(result.stdout)
    assert load_recipe(str(copy)).stage_keys == load_recipe("refinedweb").stage_keys
