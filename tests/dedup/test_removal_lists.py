"""dedup/shards.py's removal lists name each listed document by id as well as position, and the filter that applies
them refuses a list that does not match its stream (shards rewritten, another task count, a list without ids)
instead of dropping the wrong documents."""

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mdr.dedup.minhash import MinhashConfig, MinhashStage
from mdr.dedup.shards import RemovalListMismatch
from mdr.dedup.url_dedup import UrlDedupConfig, UrlDedupStage
from tests.dedup.phases import context, document, kept_and_excluded, run_in_process, write_shards

ARTICLES = ("The harbour authority said on Tuesday that the new breakwater will be finished before the winter "
            "storms, after two years of delays caused by the supply of granite from the northern quarries.",
            "A recipe for bread needs flour, water, salt and yeast; knead the dough for ten minutes, let it rise "
            "twice and bake it in a hot oven until the crust sounds hollow when tapped.")


def url_documents() -> list:
    """Six documents, each of the last four with the URL of the one two before it (the earliest copy is kept)."""
    return [document(n, f"text {n}", url=f"https://example.com/page-{n // 2}") for n in range(6)]


def lists_then_filter(root: Path, stage, config, documents: list, tasks: int, filter_tasks: int | None = None,
                      before_filter=None):
    """Runs the stage's phases but the last with `tasks` tasks, calls `before_filter(root)`, then the last phase as
    built for `filter_tasks` tasks."""
    write_shards(root / "in", documents, tasks)
    *index_phases, _ = stage.build_phases(config, context(root, tasks))
    run_in_process(index_phases)
    if before_filter is not None:
        before_filter(root)
    run_in_process(stage.build_phases(config, context(root, filter_tasks or tasks))[-1:])
    return kept_and_excluded(root, stage.key)


def reshard(documents: list, shards: int):
    """A `before_filter` that writes `documents` again as `shards` shards."""
    def rewrite(root):
        shutil.rmtree(root / "in")
        write_shards(root / "in", documents, shards)
    return rewrite


@pytest.mark.parametrize("stage, config, documents, kept_ids", [
    (UrlDedupStage, UrlDedupConfig(), url_documents(), ["doc-000", "doc-002", "doc-004"]),
    (MinhashStage, MinhashConfig(), [document(n, ARTICLES[n % 2]) for n in range(6)], ["doc-000", "doc-001"]),
])
def test_lists_carry_the_ids_of_the_documents_they_drop(tmp_path, stage, config, documents, kept_ids):
    kept, excluded = lists_then_filter(tmp_path, stage, config, documents, tasks=2)
    assert sorted(kept) == kept_ids and sorted([*kept, *excluded]) == sorted(doc.id for doc in documents)
    listed = [row for path in sorted((tmp_path / "work" / stage.key / "removals").glob("r*.parquet"))
              for row in pq.read_table(path).to_pylist()]
    assert sorted(row["id"] for row in listed) == sorted(excluded)


@pytest.mark.parametrize("rewritten, filter_tasks, expected", [
    # the same documents in another order: task 1 held doc-001, doc-003, doc-005 when its list was written
    (url_documents()[::-1], 2, "removals/r00001_p00000.parquet lists document doc-001 at position 0 of task 1, but "
                               "that position holds doc-004: the shards or the task count changed since the list was "
                               "written; run the recipe again into a new output folder"),
    (url_documents()[:4], 2, "lists document doc-005 at position 2 of task 1, but the task has only 2 documents"),
    # another task count: the lists of tasks beyond it would go unapplied, the others name other documents
    (url_documents(), 1, "removals/r00001_p00000.parquet is a removal list for task 1, but this phase runs 1 task(s): "
                         "the task count changed"),
    (url_documents(), 3, "lists document doc-003 at position 1 of task 1, but that position holds doc-004"),
])
def test_a_list_that_does_not_match_the_stream_is_refused_in_one_line(tmp_path, rewritten, filter_tasks, expected):
    with pytest.raises(RemovalListMismatch) as error:
        lists_then_filter(tmp_path, UrlDedupStage, UrlDedupConfig(), url_documents(), tasks=2,
                          filter_tasks=filter_tasks, before_filter=reshard(rewritten, filter_tasks))
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_a_task_beyond_the_lists_task_count_is_refused_as_a_mismatch(tmp_path):
    """Lists written by 2 tasks, a filter phase of 3: task 2 has no list of its own; it fails on its own (not because
    task 1 failed first) with the task counts, not with "rerun the run" (which would fail the same way)."""
    write_shards(tmp_path / "in", url_documents(), 2)
    *index_phases, _ = UrlDedupStage.build_phases(UrlDedupConfig(), context(tmp_path, 2))
    run_in_process(index_phases)
    reshard(url_documents(), 3)(tmp_path)
    [filter_phase] = UrlDedupStage.build_phases(UrlDedupConfig(), context(tmp_path, 3))[-1:]
    with pytest.raises(RemovalListMismatch) as error:
        data = None
        for step in filter_phase.pipeline:
            data = step(data, 2, 3)
        list(data)
    assert "were written for 2 task(s), but this phase runs 3: the task count changed since the lists were " \
           "written; run the recipe again into a new output folder" in str(error.value)
    assert str(tmp_path / "work" / "url_dedup" / "removals") in str(error.value) and "\n" not in str(error.value)


def test_a_list_without_ids_from_an_older_mdr_is_refused(tmp_path):
    def drop_ids(root):
        for path in (root / "work" / "url_dedup" / "removals").glob("*.parquet"):
            pq.write_table(pq.read_table(path).drop_columns(["id"]), path)

    with pytest.raises(RemovalListMismatch, match="lists documents by position only .* run the recipe again into a "
                                                  "new output folder"):
        lists_then_filter(tmp_path, UrlDedupStage, UrlDedupConfig(), url_documents(), tasks=2, before_filter=drop_ids)
