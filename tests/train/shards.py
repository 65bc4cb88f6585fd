"""Real shards for the train/ tests, made once per test process: an `mdr run refinedweb` over data_samples/ (its
OUT directory, about 15 s), and Parquet files of tinyshakespeare's speeches (one document per speech)."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.pipeline.commands import mdr

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data_samples"
SHAKESPEARE = REPO.parent / "shared" / "data" / "text" / "tinyshakespeare" / "input.txt"


@functools.cache
def _scratch() -> Path:
    path = Path(tempfile.mkdtemp(prefix="mdr-train-tests-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@functools.cache
def samples_run() -> Path:
    """OUT directory of `mdr run refinedweb --input data_samples` (3 shards, one row group each)."""
    out = _scratch() / "samples-run"
    result = mdr("run", "refinedweb", "--input", str(SAMPLES), "--output", str(out), "--no-progress")
    if result.returncode != 0:
        raise RuntimeError(f"mdr run failed: {result.stderr[-2000:]}")
    return out


def shakespeare_speeches() -> list[str]:
    return [speech for speech in SHAKESPEARE.read_text().split("\n\n") if speech.strip()]


@functools.cache
def shakespeare_shards(files: int = 3, rows_per_group: int = 400) -> Path:
    """A directory of `files` Parquet files holding the speeches in order, `rows_per_group` rows per row group."""
    out = _scratch() / f"shakespeare-{files}-{rows_per_group}"
    out.mkdir()
    speeches = shakespeare_speeches()
    per_file = -(-len(speeches) // files)
    for index in range(files):
        part = speeches[index * per_file : (index + 1) * per_file]
        table = pa.table({"text": pa.array(part, pa.string()), "id": pa.array([str(i) for i in range(len(part))])})
        pq.write_table(table, out / f"{index:05d}.parquet", row_group_size=rows_per_group)
    return out
