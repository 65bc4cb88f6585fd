import json
import pickle

import pyarrow.parquet as pq
import pytest
from datatrove.data import Document

from mdr.pipeline.writer import DATA_SCHEMA, EXCLUDED_SCHEMA, ParquetShardWriter, WriterConfig, remove_temporary_files


def _doc(i: int, **meta) -> Document:
    metadata = {"url": f"https://example.org/{i}", "date": "2024-05-01T00:00:00Z", "language": "en",
                "language_score": 0.9, "source_file": "a.warc.gz", "source_offset": 100 * i, **meta}
    return Document(text=f"text {i}", id=f"<urn:uuid:{i}>", metadata=metadata)


def test_data_shard_is_written_atomically(tmp_path):
    writer = ParquetShardWriter(str(tmp_path), config=WriterConfig(rows_per_group=2))
    stream = writer.run(iter([_doc(i) for i in range(5)]), rank=3)
    for _ in range(3):
        next(stream)
    # mid-stream: rows exist only under the hidden temporary name
    assert not list(tmp_path.glob("*.parquet"))
    assert list(tmp_path.glob(".00003.parquet.tmp"))
    assert len(list(stream)) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["00003.parquet"]
    table = pq.read_table(tmp_path / "00003.parquet")
    assert table.schema.equals(DATA_SCHEMA)
    assert table.column("id").to_pylist() == [f"<urn:uuid:{i}>" for i in range(5)]
    assert table.column("source_offset").to_pylist() == [0, 100, 200, 300, 400]
    assert pq.ParquetFile(tmp_path / "00003.parquet").metadata.row_group(0).column(0).compression == "ZSTD"


def test_killed_stream_leaves_no_shard(tmp_path):
    writer = ParquetShardWriter(str(tmp_path), config=WriterConfig(rows_per_group=1))

    def failing():
        yield _doc(0)
        raise RuntimeError("task killed")

    with pytest.raises(RuntimeError):
        list(writer.run(failing(), rank=0))
    assert not list(tmp_path.glob("*.parquet"))
    assert remove_temporary_files(str(tmp_path)) == 1
    assert not list(tmp_path.iterdir())


def test_remove_temporary_files_removes_every_leftover_of_a_killed_writer_in_out(tmp_path):
    """A killed run leaves mdr.atomic's temporaries besides shards': progress files, run.json (old runs' with a PID),
    dedup work files. Other names stay."""
    leftovers = [".run.json.tmp", ".run.json.4242.tmp", "logs/filter/progress/.00000.json.tmp",
                 "logs/filter/progress/.00001.json.4242.tmp", "work/minhash/.00000.sig.tmp", "data/.00002.parquet.tmp"]
    kept = ["run.json", "data/00000.parquet", "notes.tmp", ".lock"]
    for name in leftovers + kept:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    assert remove_temporary_files(str(tmp_path)) == len(leftovers)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == sorted(kept)


def test_no_documents_no_file(tmp_path):
    assert list(ParquetShardWriter(str(tmp_path)).run(iter([]), rank=0)) == []
    assert not list(tmp_path.iterdir())


def test_exclusion_writer_records_reason_detail_and_truncates_html(tmp_path):
    writer = ParquetShardWriter(str(tmp_path), stage="url", html=True, config=WriterConfig(max_excluded_html_chars=10))
    doc = _doc(1, filter_reason="hard_word", drop_detail="banned word 'casino'", charset="utf-8")
    doc.text = "<html>" + "x" * 100
    with writer:
        writer.write(doc, rank=7)
    row = pq.read_table(tmp_path / "00007.parquet").to_pylist()[0]
    assert pq.read_schema(tmp_path / "00007.parquet").equals(EXCLUDED_SCHEMA)
    assert row["stage"] == "url" and row["reason"] == "hard_word" and row["detail"] == "banned word 'casino'"
    assert row["text"] == "<html>xxxx" and row["text_truncated"] is True
    assert json.loads(row["metadata"]) == {"charset": "utf-8"}


def test_writer_pickles_between_ranks(tmp_path):
    writer = ParquetShardWriter(str(tmp_path))
    list(writer.run(iter([_doc(0)]), rank=0))
    clone = pickle.loads(pickle.dumps(writer))
    list(clone.run(iter([_doc(1)]), rank=1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00000.parquet", "00001.parquet"]
