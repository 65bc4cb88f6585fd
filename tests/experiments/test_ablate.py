"""`mdr ablate --run OUT` end to end on data_samples/ with a micro budget: every arm trains on the same number of
tokens with the same tokenizer, from the arm's documents tokenized once, a planted near-duplicate of an evaluation
document leaves every arm, and a second invocation trains and tokenizes nothing new."""

import json
import os
import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mdr.experiments.ablate import format_table
from mdr.experiments.heldout import is_heldout
from mdr.experiments.statistics import NOT_FINITE
from mdr.pipeline.runner import FILTER_PHASE
from mdr.layout import AblationLayout, RunLayout, TokenLayout, TrainLayout, tap_folders, task_stats_name
from tests.pipeline.commands import mdr, mdr_here, run_args

torch = pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[2]
WARCS = sorted((REPO / "data_samples").glob("*.warc.gz"))
ARMS = ["language", "lines"]
SEEDS = 2
HELDOUT_FRACTION = 0.3
# The micro budget: the tiny preset on 32-token sequences, 4 per step, 15 steps.
BUDGET = ["--tokens", "2000", "--seq-len", "32", "--batch-size", "4", "--tokenizer-vocab-size", "512",
          "--seeds", str(SEEDS), "--heldout-fraction", str(HELDOUT_FRACTION), "--no-progress"]


def texts(path: Path) -> list[str]:
    return pq.read_table(path, columns=["text"])["text"].to_pylist()


@pytest.fixture(scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ablate") / "run"
    result = mdr(*run_args("refinedweb", out, *WARCS, tasks=3, workers=2), "--tap", "language", "--tap", "lines")
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def planted(run, tmp_path_factory) -> str:
    """A --eval set holding a copy of a document that both arms forward and neither holds out."""
    folders = tap_folders(RunLayout(run))
    rows = {}
    for stage in ARMS:
        for path in sorted(folders[stage].glob("*.parquet")):
            for row in pq.read_table(path, columns=["id", "text"]).to_pylist():
                rows.setdefault(row["id"], {})[stage] = row["text"]
    doc_id, by_arm = next((i, t) for i, t in sorted(rows.items())
                          if len(t) == len(ARMS) and not is_heldout(i, HELDOUT_FRACTION) and len(t["lines"]) > 200)
    path = tmp_path_factory.mktemp("planted") / "planted.jsonl"
    path.write_text(json.dumps({"text": by_arm["lines"]}) + "\n")
    return str(path)


# A multiple-choice task of short choices (the micro budget's context is 32 tokens), scored in every run.
WORDS = [{"context": "The weather today is", "choices": [" sunny", " the of and"], "label": 0},
         {"context": "Click here to", "choices": [" banana", " read more"], "label": 1},
         {"context": "Copyright 2023. All rights", "choices": [" reserved.", " ocean."], "label": 0}]
CONTINUATION_QUESTIONS = 4


@pytest.fixture(scope="module")
def extras(planted, tmp_path_factory) -> list[str]:
    """What the module's ablation evaluates besides its held-out sets: the planted --eval set, the WORDS task and
    the continuation task."""
    words = tmp_path_factory.mktemp("tasks") / "words.jsonl"
    words.write_text("".join(json.dumps(row) + "\n" for row in WORDS))
    return ["--eval", f"planted={planted}", "--task", f"words={words}", "--continuation", str(CONTINUATION_QUESTIONS)]


@pytest.fixture(scope="module")
def ablation(run, extras, one_thread, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("ablation") / "dir"
    result = mdr_here("ablate", "--run", str(run), "--out", str(out), "--arms", ",".join(ARMS),
                      *extras, *BUDGET)
    assert result.returncode == 0, result.stderr
    assert "heldout-first" in result.stdout and "lines" in result.stdout
    return out, json.loads(AblationLayout(out).ablation_file.read_text())


def runs(out: Path) -> list[TrainLayout]:
    layout = AblationLayout(out)
    return [TrainLayout(layout.run(arm, seed)) for arm in ARMS for seed in range(SEEDS)]


def test_every_arm_trains_on_the_same_number_of_tokens(ablation):
    out, summary = ablation
    trained = set()
    for run in runs(out):
        records = [json.loads(line) for line in run.metrics.read_text().splitlines()]
        trained.add(max(record["tokens"] for record in records if record["split"] == "train"))
    assert len(trained) == 1 and trained != {0}
    tokens = trained.pop()
    assert summary["configuration"]["tokens_per_run"] == tokens
    assert [(r["arm"], r["tokens"]) for r in summary["runs"]] == [(arm, tokens) for arm in ARMS for _ in range(SEEDS)]
    for facts in summary["arms"].values():  # the epochs: the run's tokens over the arm's own
        assert facts["epochs"] == pytest.approx(tokens / facts["training_tokens"])


def test_every_run_uses_the_one_tokenizer(ablation):
    from mdr.train.tokenizer import load_tokenizer

    out, summary = ablation
    hashes = {json.loads(run.manifest.read_text())["tokenizer"]["sha256"] for run in runs(out)}
    assert hashes == {load_tokenizer(str(AblationLayout(out).tokenizer)).sha256} == {summary["tokenizer"]["sha256"]}


def test_each_arm_is_tokenized_once_and_every_run_trains_from_its_token_files(ablation):
    import numpy as np

    from mdr.train.runlog import file_sha256
    from mdr.train.tokenizer import load_tokenizer

    out, summary = ablation
    layout = AblationLayout(out)
    tokenizer = load_tokenizer(str(layout.tokenizer))
    for arm in ARMS:
        tokens = TokenLayout(layout.arm_tokens(arm))
        manifest = json.loads(tokens.manifest.read_text())
        assert manifest["tokenizer"]["sha256"] == tokenizer.sha256
        sources = [shard["source"] for shard in manifest["shards"]]
        assert sources == [{"path": str(layout.arm_data(arm)), "sha256": file_sha256(str(layout.arm_data(arm))),
                            "size": layout.arm_data(arm).stat().st_size}]
        # the token file holds the arm's documents, each encoded and followed by the end-of-document token
        [shard] = manifest["shards"]
        expected = [i for ids in tokenizer.encode_batch(texts(layout.arm_data(arm))) for i in [*ids, tokenizer.eos_id]]
        assert np.fromfile(tokens.tokens(shard["name"]), dtype=manifest["dtype"]).tolist() == expected
        assert summary["arms"][arm]["training_tokens"] == manifest["tokens"] == len(expected)
        for seed in range(SEEDS):  # every seed's run reads the arm's one token directory
            run = json.loads(TrainLayout(layout.run(arm, seed)).manifest.read_text())
            assert run["config"]["data"] == [str(tokens.root)] and run["shards"] == sources


def test_a_planted_near_duplicate_leaves_every_arm_and_is_counted(ablation, planted):
    out, summary = ablation
    text = json.loads(Path(planted).read_text())["text"]
    for arm in ARMS:
        assert text not in texts(AblationLayout(out).arm_data(arm))
        assert summary["arms"][arm]["decontaminated"] >= 1
    assert summary["decontamination"]["per_reference"]["planted"] >= 1
    assert summary["eval_sets"]["planted"]["documents"] == 1


def test_results_cover_every_arm_and_eval_set(ablation):
    _, summary = ablation
    cells = {(row["arm"], row["eval_set"]) for row in summary["results"]}
    assert cells == {(arm, name) for arm in ARMS for name in ("heldout-first", "heldout-last", "planted")}
    first = [row for row in summary["results"] if row["arm"] == ARMS[0]]
    assert all(row["difference"] is None and row["bpb"]["seeds"] == SEEDS for row in first)
    assert all(row["difference"]["verdict"] for row in summary["results"] if row["arm"] != ARMS[0])


def test_a_second_invocation_trains_and_tokenizes_nothing_new(ablation, run, extras):
    out, _ = ablation
    layout = AblationLayout(out)

    def written() -> dict:  # the runs and the token files, each file's modification time and inode
        paths = [*(layout.root / "runs").rglob("*"), layout.continuation_task,
                 *(path for arm in ARMS for path in layout.arm_tokens(arm).rglob("*"))]
        return {path: (path.stat().st_mtime_ns, path.stat().st_ino) for path in paths if path.is_file()}

    before = written()
    assert any(path.suffix == ".bin" for path in before)
    result = mdr_here("ablate", "--run", str(run), "--out", str(out), "--arms", ",".join(ARMS),
                      *extras, *BUDGET)
    assert result.returncode == 0, result.stderr
    assert written() == before


def test_other_settings_in_the_same_dir_are_refused(ablation, run, extras):
    out, _ = ablation
    result = mdr_here("ablate", "--run", str(run), "--out", str(out), "--arms", ",".join(ARMS),
                      *extras, *BUDGET, "--tokens", "4000")
    assert result.returncode == 2 and "other settings" in result.stderr


def test_an_arm_that_is_no_tap_is_one_line_before_anything_is_written(run, tmp_path):
    out = tmp_path / "dir"
    result = mdr_here("ablate", "--run", str(run), "--out", str(out), "--arms", "language,minhash", *BUDGET)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "its taps: language, lines" in result.stderr
    assert not out.exists()


def test_an_unfinished_run_is_refused(run, tmp_path):
    """A killed run's taps hold only the shards of the tasks that ended: such a run is no arm to compare."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    layout = RunLayout(copy)
    # what a kill leaves: the last task of the filter phase wrote neither its stats nor its completion mark
    (layout.logs(FILTER_PHASE) / task_stats_name(2)).unlink()
    sorted(layout.completions(FILTER_PHASE).iterdir())[-1].unlink()
    out = tmp_path / "dir"
    result = mdr_here("ablate", "--run", str(copy), "--out", str(out), *BUDGET)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert re.search(r"is an unfinished run \((\d+) of (\d+) tasks done\)", result.stderr)
    assert not out.exists()


def test_the_table_shows_a_diverged_run_without_a_number():
    summary = {"arms": {"language": {"epochs": 1.0}, "lines": {"epochs": 1.0}},
               "results": [{"arm": "language", "eval_set": "heldout-first", "difference": None,
                            "bpb": {"mean": 3.9, "std": 0.01, "seeds": 2}},
                           {"arm": "lines", "eval_set": "heldout-first",
                            "bpb": {"mean": None, "std": None, "seeds": 2},
                            "difference": {"mean": None, "low": None, "high": None, "seeds": 2,
                                           "verdict": NOT_FINITE}}]}
    first, baseline, diverged = format_table(summary).splitlines()
    assert "3.9000 ± 0.0100" in baseline and "(baseline)" in baseline
    assert diverged.split()[:4] == ["lines", "heldout-first", "1.00", "-"] and diverged.endswith(NOT_FINITE)


def test_every_run_records_learning_curves_from_its_metrics(ablation):
    from mdr.experiments.ablate import CURVE_POINTS

    out, summary = ablation
    steps = summary["configuration"]["max_steps"]
    interval = max(1, steps // CURVE_POINTS)
    points = [step for step in range(1, steps + 1) if step % interval == 0 or step == steps]
    tokens_per_step = summary["configuration"]["tokens_per_run"] // steps
    for run, result in zip(runs(out), summary["runs"]):
        records = [json.loads(line) for line in run.metrics.read_text().splitlines()]
        assert set(result["curves"]) == {"heldout-first", "heldout-last"}  # the held-out sets: CURVE_SETS
        for name, curve in result["curves"].items():
            assert [tokens for tokens, _ in curve] == [step * tokens_per_step for step in points]
            assert [bpb for _, bpb in curve] == [r["bpb"] for r in records if r["split"] == "eval" and r["set"] == name]
            assert curve[-1][1] > 0 and curve[0][1] > curve[-1][1]  # a curve goes down as the model learns
        assert result["train_config"]["checkpoint_interval"] == interval  # a killed run resumes from a curve point
    assert summary["curves"] == {"sets": ["heldout-first", "heldout-last"], "interval": interval,
                                 "batches": summary["runs"][0]["train_config"]["eval_batches"]}


def test_eval_sets_are_written_in_a_seeded_random_order(ablation):
    """A curve point reads the first batches of a set: in the documents' own order those would be the first
    documents of the first arm's first shard, not a sample of the set."""
    out, summary = ablation
    for name in ("heldout-first", "heldout-last", "planted"):
        order = [int(i) for i in pq.read_table(AblationLayout(out).eval_set(name), columns=["id"])["id"].to_pylist()]
        assert sorted(order) == list(range(summary["eval_sets"][name]["documents"]))
    first = [int(i) for i in pq.read_table(AblationLayout(out).eval_set("heldout-first"), columns=["id"])["id"]
             .to_pylist()]
    assert first != sorted(first)


def test_a_run_killed_mid_way_resumes_there_with_the_same_result(ablation, run, extras):
    """The last run of the module's ablation done again, killed after step 7 (the trainer's stop_at: a checkpoint
    there, as a kill leaves at the curve point before): the rerun resumes it at step 7, and ends where it ended."""
    from mdr.train.trainer import TrainConfig, train

    out, summary = ablation
    layout = AblationLayout(out)
    arm, seed = ARMS[-1], SEEDS - 1
    finished = json.loads(layout.result(arm, seed).read_text())
    layout.result(arm, seed).unlink()
    TrainLayout(layout.run(arm, seed)).checkpoint.unlink()  # the rerun would start afresh
    train(TrainConfig(**finished["train_config"]), stop_at=7)
    result = mdr_here("ablate", "--run", str(run), "--out", str(out), "--arms", ",".join(ARMS), *extras, *BUDGET)
    assert result.returncode == 0, result.stderr
    resumed = json.loads(layout.result(arm, seed).read_text())
    assert json.loads(TrainLayout(layout.run(arm, seed)).manifest.read_text())["resumes"] == [7]
    assert (resumed["bpb"], resumed["curves"], resumed["tokens"]) == (finished["bpb"], finished["curves"],
                                                                      finished["tokens"])

def test_every_run_scores_every_task_as_evaluate_task_does(ablation):
    from mdr.train.checkpointing import load_model
    from mdr.train.tasks import evaluate_task, read_task
    from mdr.train.tokenizer import load_tokenizer

    out, summary = ablation
    layout = AblationLayout(out)
    questions = {"words": len(WORDS), "continuation": CONTINUATION_QUESTIONS}
    for arm in ARMS:
        for seed in range(SEEDS):
            tasks = json.loads(layout.result(arm, seed).read_text())["tasks"]
            assert {name: tasks[name]["questions"] for name in questions} == questions
    # the scores of one run, recomputed from its checkpoint on the task file as written
    run = TrainLayout(layout.run(ARMS[1], 1))
    model, _ = load_model(run.root, "cpu")
    expected = evaluate_task(model, load_tokenizer(str(run.tokenizer)), read_task(layout.continuation_task))
    scored = json.loads(layout.result(ARMS[1], 1).read_text())["tasks"]["continuation"]
    assert (scored["acc"], scored["acc_norm"], scored["chance"]) == (expected["acc"], expected["acc_norm"], 0.25)
    assert summary["tasks"]["words"]["questions"] == len(WORDS) and summary["tasks"]["words"]["chance"] == 0.5
    assert summary["tasks"]["continuation"]["path"] == str(layout.continuation_task)


def test_the_continuation_task_is_made_of_heldout_last_documents(ablation):
    out, _ = ablation
    layout = AblationLayout(out)
    heldout_last = texts(layout.eval_set("heldout-last"))
    rows = [json.loads(line) for line in layout.continuation_task.read_text().splitlines()]
    assert len(rows) == CONTINUATION_QUESTIONS
    for row in rows:  # the right choice continues a held-out document; the others are other documents'
        assert sum(text.startswith(row["context"] + row["choices"][row["label"]]) for text in heldout_last) == 1
        assert len(set(row["choices"])) == len(row["choices"]) == 4


def test_task_rows_compare_acc_norm_and_follow_the_bpb_rows_in_the_table(ablation):
    from mdr.experiments.statistics import BETTER, WORSE

    _, summary = ablation
    rows = summary["task_results"]
    assert [(row["arm"], row["task"]) for row in rows] == [(arm, task) for arm in ARMS
                                                           for task in ("words", "continuation")]
    assert all(row["metric"] == "acc_norm" and row["acc_norm"]["seeds"] == SEEDS for row in rows)
    for row in rows[2:]:  # higher is better: a positive difference above its interval's 0 is "better"
        difference = row["difference"]
        if difference["verdict"] in (BETTER, WORSE):
            assert (difference["verdict"] == BETTER) == (difference["low"] > 0)
    lines = format_table(summary).splitlines()
    header = next(i for i, line in enumerate(lines) if "acc_norm ± std" in line)
    assert header == 1 + len(summary["results"])
    assert [line.split()[:2] for line in lines[header + 1:]] == [[row["arm"], row["task"]] for row in rows]


def test_a_task_added_later_is_scored_without_training(ablation, run, extras, tmp_path):
    """The module's ablation again with one more task (which the other tests do not mind: a result.json keeps the
    scores of tasks not asked for)."""
    out, _ = ablation
    layout = AblationLayout(out)
    checkpoints = {path: path.stat().st_mtime_ns for path in (out / "runs").rglob("ckpt.pt")}
    more = tmp_path / "more.jsonl"
    more.write_text(json.dumps({"context": "Home", "choices": [" page", " zzz"], "label": 0}) + "\n")
    result = mdr_here("ablate", "--run", str(run), "--out", str(out), "--arms", ",".join(ARMS), *extras,
                      "--task", f"more={more}", *BUDGET)
    assert result.returncode == 0, result.stderr
    assert {path: path.stat().st_mtime_ns for path in (out / "runs").rglob("ckpt.pt")} == checkpoints
    for arm in ARMS:
        for seed in range(SEEDS):
            assert set(json.loads(layout.result(arm, seed).read_text())["tasks"]) == {"words", "continuation", "more"}


@pytest.mark.parametrize("task, message", [
    ("heldout-last={words}", "--task heldout-last: an evaluation set has that name"),
    ("planted={words}", "--task planted: an evaluation set has that name"),
    ("continuation={words}", "--task continuation: --continuation's task has that name"),
    ("bad={bad}", "bad.jsonl line 1: 'label' must be the index of the right choice"),
])
def test_a_task_that_cannot_be_scored_is_one_line_before_anything_is_written(run, extras, tmp_path, task, message):
    words = extras[extras.index("--task") + 1].partition("=")[2]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"context": "a", "choices": [" b", " c"], "label": "b"}) + "\n")
    out = tmp_path / "dir"
    result = mdr_here("ablate", "--run", str(run), "--out", str(out), "--arms", ",".join(ARMS), "--eval",
                      extras[1], "--continuation", "4", "--task", task.format(words=words, bad=bad), *BUDGET)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not out.exists()

@pytest.fixture
def two_cores():
    """This process's cores cut to two for the test: `--parallel 2` then gives each run one thread, as the module's
    runs have (one_thread), on any machine. The thread count changes the floats (measured: 2 threads against 1 move
    bits per byte by ~1e-8, torch's reductions summing in another order), so a bitwise comparison needs it equal."""
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, sorted(cores)[:2])
    yield
    os.sched_setaffinity(0, cores)


def test_parallel_runs_give_the_results_of_runs_one_at_a_time(ablation, run, extras, two_cores, tmp_path):
    out, _ = ablation
    parallel = tmp_path / "dir"
    budget = [arg for arg in BUDGET if arg != "--no-progress"]
    result = mdr_here("ablate", "--run", str(run), "--out", str(parallel), "--arms", ",".join(ARMS),
                      *extras, *budget, "--seeds", "1", "--parallel", "2")
    assert result.returncode == 0, result.stderr
    done = sorted(line for line in result.stderr.splitlines() if line.startswith("mdr: ablate:"))
    assert [re.sub(r"\(\d/", "(", line) for line in done] == [f"mdr: ablate: {arm} seed 0 done (2)" for arm in ARMS]
    for arm in ARMS:  # seed 0 of each arm: the same run as the module's, trained in another process
        alone = json.loads(AblationLayout(out).result(arm, 0).read_text())
        side_by_side = json.loads(AblationLayout(parallel).result(arm, 0).read_text())
        assert side_by_side["bpb"] == alone["bpb"] and side_by_side["tokens"] == alone["tokens"]


def test_parallel_trainings_on_a_gpu_are_refused(run, tmp_path):
    from mdr.errors import UsageError
    from mdr.experiments.ablate import AblateConfig, ablate

    out = tmp_path / "dir"
    with pytest.raises(UsageError, match="--parallel 2 runs CPU trainings side by side"):
        ablate(AblateConfig(run=str(run), out=str(out), tokens=2000, device="cuda", parallel=2))
    assert not out.exists()
