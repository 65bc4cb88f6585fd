"""Every option's valid values (issue 10 point 4): out-of-range, non-finite, wrongly typed and inconsistent values,
unknown languages and codecs, and configurations too large for the machine are refused by `mdr run` with one line
naming the key and exit code 2, before the output directory exists."""

import dataclasses
import resource
import subprocess
import sys
import tracemalloc
import typing
from pathlib import Path

import pytest
import yaml

from mdr.cli import main
from mdr.dedup.exact_substring import ExactSubstringConfig
from mdr.dedup.minhash import MinhashConfig, MinhashSignature
from mdr.dedup.url_dedup import UrlDedupConfig
from mdr.filters.language import default_model_path, model_languages
from mdr.pipeline import cli
from mdr.pipeline.reader import ReaderConfig
from mdr.pipeline.recipe import (
    MAX_TASKS,
    STAGE_REGISTRY,
    OptionError,
    Options,
    RecipeError,
    available_memory_bytes,
    check_resources,
    load_recipe,
    open_files_limit,
    parse_recipe,
)
from mdr.pipeline.writer import WriterConfig

NAN, INF = float("nan"), float("inf")
SHAKESPEARE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "text" / "tinyshakespeare" / "input.txt"

# (recipe section, options, what the error line must name). Sections are stage keys, `reader` or `output`.
BAD = {
    "url": [
        ({"soft_word_threshold": 0}, "url.soft_word_threshold"),  # "drop at >= 0 soft words": every document
        ({"soft_word_threshold": -1}, "url.soft_word_threshold"),
        ({"blocklist_dir": "/no/such/folder"}, "url.blocklist_dir"),
        ({"hard_words_path": "/no/such/file"}, "url.hard_words_path"),
        ({"extra_domains": [""]}, "url.extra_domains[0]"),
        ({"curated_sources": ["wikipedia.org", ""]}, "url.curated_sources[1]"),
    ],
    "extract": [
        ({"timeout_s": -1}, "extract.timeout_s"),
        ({"timeout_s": 0}, "extract.timeout_s"),
        ({"timeout_s": NAN}, "extract.timeout_s"),
        ({"timeout_s": 1e12}, "extract.timeout_s"),
        ({"max_html_bytes": 0}, "extract.max_html_bytes"),
        ({"max_consecutive_newlines": 0}, "extract.max_consecutive_newlines"),
        ({"excluded_text_max_chars": -1}, "extract.excluded_text_max_chars"),
        ({"extract_fn": "no_such_module:extract"}, "extract.extract_fn"),
        ({"extract_fn": 5}, "extract.extract_fn"),
    ],
    "language": [
        ({"threshold": 1.5}, "language.threshold"),
        ({"threshold": -0.1}, "language.threshold"),
        ({"threshold": NAN}, "language.threshold"),
        ({"languages": ["xx"]}, "language.languages[0]"),
        ({"languages": ["en", "english"]}, "language.languages[1]"),
        ({"languages": []}, "language.languages"),
        ({"model_path": "/no/such/lid.bin"}, "language.model_path"),
    ],
    "repetition": [
        ({"dup_line_frac": 1.5}, "repetition.dup_line_frac"),
        ({"dup_para_frac": -0.1}, "repetition.dup_para_frac"),
        ({"dup_line_char_frac": INF}, "repetition.dup_line_char_frac"),
        ({"dup_para_char_frac": NAN}, "repetition.dup_para_char_frac"),
        ({"top_ngram_char_frac": {2: 1.5}}, "repetition.top_ngram_char_frac[2]"),
        ({"top_ngram_char_frac": {0: 0.2}}, "repetition.top_ngram_char_frac"),
        ({"top_ngram_char_frac": {"two": 0.2}}, "repetition.top_ngram_char_frac"),
        ({"dup_ngram_char_frac": {5: "high"}}, "repetition.dup_ngram_char_frac[5]"),
        ({"dup_ngram_char_frac": {5: {"limit": 0.1}}}, "repetition.dup_ngram_char_frac[5]"),
    ],
    "quality": [
        ({"max_doc_words": 10}, "quality.max_doc_words"),  # below the default min_doc_words 50
        ({"min_doc_words": 200, "max_doc_words": 100}, "quality.max_doc_words"),
        ({"min_doc_words": -1}, "quality.min_doc_words"),
        ({"max_avg_word_length": 2}, "quality.max_avg_word_length"),  # below min_avg_word_length 3
        ({"max_symbol_word_ratio": -0.1}, "quality.max_symbol_word_ratio"),
        ({"max_bullet_lines_ratio": 1.5}, "quality.max_bullet_lines_ratio"),
        ({"max_ellipsis_lines_ratio": NAN}, "quality.max_ellipsis_lines_ratio"),
        ({"min_alpha_words_ratio": -0.5}, "quality.min_alpha_words_ratio"),
        ({"min_stop_words": -1}, "quality.min_stop_words"),
        ({"stop_words": []}, "quality.stop_words"),  # with min_stop_words 2: every document dropped
        ({"stop_words_count_unique": True, "min_stop_words": 9}, "quality.min_stop_words"),  # 8 distinct words
        ({"stop_words_count_unique": True, "stop_words": ["the", "the"]}, "quality.min_stop_words"),  # 2 > 1
        ({"bullet_prefixes": [""]}, "quality.bullet_prefixes[0]"),
        ({"min_doc_words": "50"}, "quality.min_doc_words"),
        ({"min_doc_words": True}, "quality.min_doc_words"),
    ],
    "lines": [
        ({"max_uppercase_fraction": 2}, "lines.max_uppercase_fraction"),
        ({"max_numeric_fraction": -1}, "lines.max_numeric_fraction"),
        ({"min_words_per_line": -1}, "lines.min_words_per_line"),
        ({"max_words_for_boilerplate": -1}, "lines.max_words_for_boilerplate"),
        ({"max_removed_words_fraction": NAN}, "lines.max_removed_words_fraction"),
        ({"boilerplate_end": ["read more", ""]}, "lines.boilerplate_end[1]"),
    ],
    "c4": [
        ({"min_words_per_line": -1}, "c4.min_words_per_line"),
        ({"min_num_sentences": -1}, "c4.min_num_sentences"),
        ({"max_word_length": 0}, "c4.max_word_length"),
    ],
    "fineweb_quality": [
        ({"line_punct_thr": 1.0}, "fineweb_quality.line_punct_thr"),  # ratio <= 1 always: every document
        ({"line_punct_thr": -0.5}, "fineweb_quality.line_punct_thr"),
        ({"short_line_thr": 0}, "fineweb_quality.short_line_thr"),  # ratio >= 0 always
        ({"char_duplicates_ratio": 0}, "fineweb_quality.char_duplicates_ratio"),
        ({"new_line_ratio": -1}, "fineweb_quality.new_line_ratio"),
        ({"short_line_length": -1}, "fineweb_quality.short_line_length"),
        ({"stop_chars": [""]}, "fineweb_quality.stop_chars[0]"),
    ],
    "minhash": [
        ({"num_bands": 0}, "minhash.num_bands"),
        ({"rows_per_band": -1}, "minhash.rows_per_band"),
        ({"n_grams": 0}, "minhash.n_grams"),
        ({"seed": -1}, "minhash.seed"),  # numpy's RandomState refuses it, in the middle of the run
        ({"seed": 2**32}, "minhash.seed"),
        ({"batch_docs": 0}, "minhash.batch_docs"),
        ({"bucket_tasks": 0}, "minhash.bucket_tasks"),
        ({"bucket_tasks": 10**9}, "minhash.bucket_tasks"),
        ({"num_bands": 100_000_000}, "minhash.num_bands"),  # 2.5 TB per task: the OOM killer took the machine
    ],
    "exact_substring": [
        ({"min_span_tokens": 1}, "exact_substring.min_span_tokens"),
        ({"partitions": 0}, "exact_substring.partitions"),
        ({"partitions": open_files_limit()}, "exact_substring.partitions"),
        ({"partitions": 10**9}, "exact_substring.partitions"),
        ({"min_words_after_cut": -1}, "exact_substring.min_words_after_cut"),
        ({"tokenizer_file": "/no/such/tokenizer.json"}, "exact_substring.tokenizer_file"),
        ({"tokenizer_file": str(default_model_path())}, "exact_substring.tokenizer_file"),  # a file, not a tokenizer
        ({"mode": "erase"}, "exact_substring.mode"),
    ],
    "url_dedup": [
        ({"resolve_tasks": 0}, "url_dedup.resolve_tasks"),
        ({"resolve_tasks": 10**9}, "url_dedup.resolve_tasks"),  # a billion tasks: the run hung planning them
        ({"normalize": "yes"}, "url_dedup.normalize"),
    ],
    "pii": [
        ({"email_replacement": []}, "pii.email_replacement"),
        ({"ip_replacement": ["8.8.8.8", ""]}, "pii.ip_replacement[1]"),
        ({"only_remove_public_ips": "no"}, "pii.only_remove_public_ips"),
    ],
    "reader": [
        ({"max_payload_bytes": 0}, "reader.max_payload_bytes"),
        ({"max_payload_bytes": 10**15}, "reader.max_payload_bytes"),  # 6 PB of buffers per task
        ({"http_statuses": [200, 999]}, "reader.http_statuses[1]"),
        ({"http_statuses": []}, "reader.http_statuses"),
        ({"mime_types": [""]}, "reader.mime_types[0]"),
        ({"max_replacement_fraction": 1.5}, "reader.max_replacement_fraction"),
        ({"progress_interval_s": 0}, "reader.progress_interval_s"),
        ({"progress_interval_s": INF}, "reader.progress_interval_s"),
        ({"meta_charset_bytes": -1}, "reader.meta_charset_bytes"),
        ({"charset_detection_bytes": 0}, "reader.charset_detection_bytes"),
    ],
    "output": [
        ({"compression": "lzo"}, "output.compression"),
        ({"compression": "bz2"}, "output.compression"),  # pyarrow has the codec, Parquet does not
        ({"compression": "snappy"}, "output.compression_level"),  # level 3 by default; snappy has none
        ({"compression_level": 99}, "output.compression_level"),  # zstd: at most 22
        ({"compression": "gzip", "compression_level": 10}, "output.compression_level"),
        ({"rows_per_group": 0}, "output.rows_per_group"),
        ({"max_excluded_html_chars": -1}, "output.max_excluded_html_chars"),
    ],
}

CASES = [pytest.param(section, options, key, id=f"{section}-{'-'.join(map(str, options))}-{index}")
         for section, rows in BAD.items() for index, (options, key) in enumerate(rows)]


def _recipe(section: str, options: dict) -> dict:
    if section in ("reader", "output"):
        return {section: options, "stages": [{"quality": {}}]}
    return {"stages": [{section: options}]}


def _run(tmp_path, capsys, recipe: dict, *flags: str) -> tuple[int, str]:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    warc = tmp_path / "in.warc.gz"
    warc.write_bytes(b"")
    code = main(["run", str(path), "--input", str(warc), "--output", str(tmp_path / "out"), "--workers", "1",
                 *flags])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("section, options, key", CASES)
def test_bad_value_exits_2_with_one_line_naming_the_key_and_writes_nothing(tmp_path, capsys, section, options, key):
    code, err = _run(tmp_path, capsys, _recipe(section, options))
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("mdr: error: "), err
    assert key in err, err
    assert not (tmp_path / "out").exists()


def test_every_section_is_covered_by_the_table():
    assert set(BAD) == set(STAGE_REGISTRY) | {"reader", "output"}


def _configs() -> list[type]:
    import importlib

    classes = [getattr(importlib.import_module(module), config) for module, _, config in STAGE_REGISTRY.values()]
    return classes + [ReaderConfig, WriterConfig]


# Numeric options checked elsewhere than a declared range: by the codec's own range (WriterConfig's
# check_combination).
RANGE_EXEMPT = {("WriterConfig", "compression_level")}


def _mentions_a_number(hint) -> bool:
    """int or float, alone, optional, or inside a tuple or mapping (bool is its own type here)."""
    if hint in (int, float):
        return True
    return any(_mentions_a_number(arg) for arg in typing.get_args(hint) if not isinstance(arg, list))


@pytest.mark.parametrize("config_class", _configs(), ids=lambda c: c.__name__)
def test_every_numeric_option_declares_its_range(config_class):
    assert issubclass(config_class, Options)
    hints = typing.get_type_hints(config_class)
    for spec in dataclasses.fields(config_class):
        if _mentions_a_number(hints[spec.name]) and (config_class.__name__, spec.name) not in RANGE_EXEMPT:
            assert "range" in spec.metadata, f"{config_class.__name__}.{spec.name} has no declared range"


@pytest.mark.parametrize("config_class", _configs(), ids=lambda c: c.__name__)
def test_defaults_pass_their_own_checks(config_class):
    config_class()  # raises if a default is outside its range


def test_builtin_recipes_still_load_and_fit_this_machine():
    for name in ("refinedweb", "fineweb"):
        recipe = load_recipe(name)
        check_resources(recipe, tasks=64, concurrent=64, open_files_limit=open_files_limit())


def test_language_codes_are_the_models_labels():
    """lid.176 knows 176 languages; its dictionary's labels are what `predict` can answer."""
    import fasttext

    codes = model_languages(str(default_model_path()))
    assert len(codes) == 176 and {"en", "de", "zh", "ja", "sw"} <= codes and "xx" not in codes
    labels, _ = fasttext.load_model(str(default_model_path())).predict("Ein kurzer deutscher Satz.", k=-1, threshold=0)
    assert {label.removeprefix("__label__") for label in labels} <= codes
    assert parse_recipe({"stages": [{"language": {"languages": ["en", "de", "zh"]}}]}).stages[0].config.languages


def test_memory_refusal_names_the_estimate_and_the_limit():
    recipe = parse_recipe({"reader": {"max_payload_bytes": 1024},  # 6 KB per task
                           "stages": [{"minhash": {"num_bands": 450, "rows_per_band": 20}}]})
    per_task = recipe.stages[0].config.task_memory_bytes()
    check_resources(recipe, tasks=4, concurrent=4, memory_limit=4 * per_task)
    with pytest.raises(RecipeError) as info:
        check_resources(recipe, tasks=4, concurrent=4, memory_limit=2 * per_task)
    message = str(info.value)
    assert "minhash (num_bands 450, rows_per_band 20, batch_docs 64) needs about 11.3 MB per task" in message
    assert "45.1 MB for the 4 tasks run at once" in message and f"({2 * per_task / 1e6:.1f} MB)" in message
    # concurrency is bounded by the tasks there are
    check_resources(recipe, tasks=1, concurrent=64, memory_limit=per_task)


def test_slurm_memory_per_task_is_the_limit(tmp_path, capsys):
    """On Slurm a task's memory is --slurm-mem-per-cpu-gb × --slurm-cpus-per-task: refused before any sbatch."""
    code, err = _run(tmp_path, capsys, {"stages": [{"minhash": {"num_bands": 50_000, "rows_per_band": 20}}]},
                     "--executor", "slurm", "--slurm-mem-per-cpu-gb", "0.5")  # 1.2 GB > 0.5 GiB
    assert code == 2 and "a Slurm task's memory" in err and "minhash.num_bands" in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bands, batch", [(2000, 64), (200, 256)])
def test_minhash_estimate_is_what_a_signatures_batch_allocates(bands, batch):
    """`task_memory_bytes` against the peak that tracemalloc (which numpy reports its arrays to) measures while a
    batch is signed: an upper bound, and a close one."""
    config = MinhashConfig(num_bands=bands, rows_per_band=20, batch_docs=batch)
    texts = [" ".join(f"w{i}x{j}" for j in range(300)) for i in range(batch)]
    tracemalloc.start()
    try:
        MinhashSignature(config).document_keys(texts)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert 0.8 * config.task_memory_bytes() <= peak <= 1.05 * config.task_memory_bytes()


@pytest.mark.parametrize("flags, key", [
    (["--tasks", "0"], "--tasks"),
    (["--tasks", "10000000"], "--tasks"),
    (["--workers", "0"], "--workers"),
    (["--slurm-cpus-per-task", "0"], "--slurm-cpus-per-task"),
    (["--slurm-mem-per-cpu-gb", "nan"], "--slurm-mem-per-cpu-gb"),
    (["--slurm-mem-per-cpu-gb", "-1"], "--slurm-mem-per-cpu-gb"),
    (["--slurm-time", "1h"], "--slurm-time"),
])
def test_bad_run_flags_exit_2(tmp_path, capsys, flags, key):
    code, err = _run(tmp_path, capsys, {"stages": [{"quality": {}}]}, *flags)
    assert code == 2 and key in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_workers_beyond_the_process_limit_exit_2(tmp_path):
    """A local worker is a process: more than `ulimit -u` cannot start (run with a lowered limit)."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text("stages: [quality]\n")
    (tmp_path / "in.warc.gz").write_bytes(b"")
    soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    limit = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    result = subprocess.run(
        [sys.executable, "-c", "import resource, sys; from mdr.cli import main; "
         f"resource.setrlimit(resource.RLIMIT_NPROC, ({limit}, {hard})); sys.exit(main(sys.argv[1:]))",
         "run", str(recipe), "--input", str(tmp_path / "in.warc.gz"), "--output", str(tmp_path / "out"),
         "--workers", str(limit + 1)], capture_output=True, text=True)
    assert result.returncode == 2 and "--workers must be at most" in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("config_class, name", [(MinhashConfig, "bucket_tasks"), (ExactSubstringConfig, "partitions"),
                                               (UrlDedupConfig, "resolve_tasks")])
def test_dedup_task_counts_share_the_run_flags_bound(config_class, name):
    """A stage's own task count has the bound of `mdr run --tasks` (one constant): MAX_TASKS passes, one more not."""
    config_class(**{name: MAX_TASKS})
    with pytest.raises(OptionError, match=f"{name} must be in \\[1, {MAX_TASKS}\\]"):
        config_class(**{name: MAX_TASKS + 1})
    assert cli.MAX_TASKS is MAX_TASKS


def _fake_root(tmp_path, cgroup: str, files: dict[str, str], available_kb: int = 64 * 2**20) -> Path:
    """A directory standing for / with /proc/self/cgroup, /proc/meminfo (64 GiB available) and cgroup files."""
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/cgroup").write_text(cgroup)
    (tmp_path / "proc/meminfo").write_text(f"MemTotal: {2 * available_kb} kB\nMemAvailable: {available_kb} kB\n")
    for name, text in files.items():
        (tmp_path / "sys/fs/cgroup" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "sys/fs/cgroup" / name).write_text(text)
    return tmp_path


GIB = 2**30
# (/proc/self/cgroup, files under /sys/fs/cgroup, bytes the process can still allocate)
CGROUPS = {
    "no-cgroup-limit": ("0::/user.slice\n", {"user.slice/memory.max": "max\n"}, 64 * GIB),
    "v2-container": ("0::/\n", {"memory.max": f"{8 * GIB}\n", "memory.current": f"{3 * GIB}\n"}, 5 * GIB),
    # Slurm: the job's cgroup holds the limit, the process sits in a step's cgroup below it
    "v2-slurm-job-above-step": (
        "0::/system.slice/slurmstepd.scope/job_42/step_0/user/task_0\n",
        {"system.slice/slurmstepd.scope/job_42/memory.max": f"{4 * GIB}\n",
         "system.slice/slurmstepd.scope/job_42/memory.current": f"{1 * GIB}\n",
         "system.slice/slurmstepd.scope/job_42/memory.stat": f"anon 1\ninactive_file {GIB // 2}\n",
         "system.slice/slurmstepd.scope/job_42/step_0/user/task_0/memory.max": "max\n"},
        3 * GIB + GIB // 2),
    # v1, as on this machine: "no limit" is PAGE_COUNTER_MAX pages; a limit on the process's own cgroup
    "v1-unlimited": ("4:memory:/process_api/abc\n0::/\n",
                     {"memory/memory.limit_in_bytes": "9223372036854771712\n",
                      "memory/process_api/abc/memory.limit_in_bytes": "9223372036854771712\n"}, 64 * GIB),
    "v1-limited": ("5:cpu,cpuacct:/\n4:memory:/process_api/abc\n0::/\n",
                   {"memory/process_api/abc/memory.limit_in_bytes": f"{2 * GIB}\n",
                    "memory/process_api/abc/memory.usage_in_bytes": f"{GIB}\n",
                    "memory/process_api/abc/memory.stat": "total_inactive_file 0\n"}, GIB),
    # a container without a cgroup namespace lists the host's path, which its mount does not have: the root counts
    "v1-host-path-root-mount": ("4:memory:/docker/0123abcd\n",
                                {"memory/memory.limit_in_bytes": f"{6 * GIB}\n"}, 6 * GIB),
    "usage-over-limit": ("0::/\n", {"memory.max": f"{GIB}\n", "memory.current": f"{2 * GIB}\n"}, 0),
}


@pytest.mark.parametrize("case", CGROUPS)
def test_available_memory_reads_the_processs_cgroup(tmp_path, case):
    """The memory checks see a container's or a Slurm job's cgroup limit (v1 or v2, at the process's cgroup or an
    ancestor), less what the cgroup already uses, not only the machine's MemAvailable."""
    cgroup, files, expected = CGROUPS[case]
    assert available_memory_bytes(_fake_root(tmp_path, cgroup, files)) == expected


def test_exact_substring_partition_too_large_for_memory_is_one_line():
    """A partition's text is known only when its task runs: the suffix-array step refuses, in one line, what the
    memory available cannot hold, instead of meeting the OOM killer."""
    from mdr.dedup.exact_substring import SUFFIX_ARRAY_BYTES_PER_TOKEN, check_partition_memory

    check_partition_memory(1000, available=1000 * SUFFIX_ARRAY_BYTES_PER_TOKEN)
    with pytest.raises(MemoryError) as info:
        check_partition_memory(10**12)  # 50 TB: more than this machine has
    assert "\n" not in str(info.value) and "raise exact_substring.partitions" in str(info.value)
    with pytest.raises(MemoryError) as info:
        check_partition_memory(10**8, available=2 * 10**9)
    assert str(info.value) == (f"exact_substring: a partition of 100,000,000 tokens needs about "
                               f"{10**8 * SUFFIX_ARRAY_BYTES_PER_TOKEN / 1e9:.1f} GB for its suffix array, more than "
                               "the 2.0 GB of memory available: raise exact_substring.partitions")


@pytest.mark.skipif(not SHAKESPEARE.is_file(), reason=f"real text not present at {SHAKESPEARE}")
def test_exact_substring_bytes_per_token_is_measured():
    """SUFFIX_ARRAY_BYTES_PER_TOKEN bounds the peak that tracemalloc measures in find_duplicate_spans on real text."""
    from mdr.dedup.exact_substring import SUFFIX_ARRAY_BYTES_PER_TOKEN, SpanTokenizer, find_duplicate_spans

    text = SHAKESPEARE.read_text()[:400_000]
    ids = [SpanTokenizer().tokenize(text[i : i + 5000])[0] for i in range(0, len(text), 5000)]
    tokens = sum(map(len, ids))
    tracemalloc.start()
    try:
        find_duplicate_spans(ids, 50)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert 0.7 * SUFFIX_ARRAY_BYTES_PER_TOKEN * tokens <= peak <= SUFFIX_ARRAY_BYTES_PER_TOKEN * tokens
