"""Lazy reading of a run's Parquet outputs: rows picked by global number across files and row groups."""

import random

import pyarrow as pa
import pyarrow.parquet as pq

from mdr.pipeline.report.collect import RowPicker, collect


def test_row_picker_reads_the_rows_asked_for(tmp_path):
    files, expected = [], []
    for index, rows in enumerate((7, 0, 25, 3)):
        values = [f"file{index}-row{row}" for row in range(rows)]
        pq.write_table(pa.table({"text": values, "n": list(range(rows))}), tmp_path / f"{index}.parquet",
                       row_group_size=4)
        files.append(str(tmp_path / f"{index}.parquet"))
        expected += values
    picker = RowPicker(files)
    assert picker.num_rows == len(expected)
    wanted = random.Random(0).sample(range(len(expected)), 12) + [0, len(expected) - 1]
    found = picker.take(wanted, ["text", "missing_column"])
    assert {row: found[row]["text"] for row in wanted} == {row: expected[row] for row in wanted}


def test_a_run_without_outputs_still_reports(tmp_path):
    (tmp_path / "run.json").write_text('{"recipe": {"name": "empty", "stages": []}, "phases": []}')
    view = collect(tmp_path, per_reason=5, seed=0, max_chars=10)
    assert view["samples"] == {"stages": [], "kept": {"count": 0, "docs": []}, "unstored": {}}
    assert view["languages"] is None and view["dedup"] == {"stages": [], "cluster_sizes": []}
    assert all(sum(counts) == 0 for _, counts in view["lengths"]["series"])
