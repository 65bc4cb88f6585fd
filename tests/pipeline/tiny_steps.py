"""Tiny datatrove steps for the executor tests.

They live in a module of their own because executors pickle steps by reference: the task processes of the local
(forkserver), Ray and Slurm executors import `tests.pipeline.tiny_steps`, so the repo must be on their PYTHONPATH
(the `job_pythonpath` fixture of tests/conftest.py puts it there).
"""

import os
import time

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.readers import ParquetReader
from datatrove.pipeline.writers import ParquetWriter


class GenerateDocuments(PipelineStep):
    """Yields `docs_per_rank` documents per rank, ids `<rank>-<i>`; records each run in `runs_dir`."""

    name = "generate"
    type = "test"

    def __init__(self, docs_per_rank: int = 4, runs_dir: str | None = None, sleep_seconds: float = 0.0):
        super().__init__()
        self.docs_per_rank = docs_per_rank
        self.runs_dir = runs_dir
        self.sleep_seconds = sleep_seconds

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        if self.runs_dir:  # one line per execution of this rank: lets tests see which ranks re-ran
            with open(os.path.join(self.runs_dir, f"{rank}.runs"), "a") as runs:
                runs.write(f"{os.getpid()}\n")
        time.sleep(self.sleep_seconds)
        for i in range(self.docs_per_rank):
            self.stat_update("generated")
            yield Document(text=f"document {i} of rank {rank}", id=f"{rank}-{i}", metadata={"index": i})


class DropOddIndex(BaseFilter):
    """Drops documents with an odd `index`, reason `odd_index`."""

    name = "drop odd"

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return doc.metadata["index"] % 2 == 0 or (False, "odd_index")


class FailOnRank(PipelineStep):
    """Fails rank `rank`: raises (`mode="raise"`) or kills its process without cleanup (`mode="exit"`)."""

    name = "fail on rank"
    type = "test"

    def __init__(self, rank: int, mode: str = "raise"):
        super().__init__()
        self.fail_rank = rank
        self.mode = mode

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        if rank == self.fail_rank:
            if self.mode == "exit":
                os._exit(3)
            raise ValueError(f"planned failure of rank {rank}")
        yield from data


def generate_filter_write(output_dir: str, runs_dir: str | None = None, fail_rank: int | None = None,
                          fail_mode: str = "raise", sleep_seconds: float = 0.0) -> list:
    """The tiny pipeline: generate → drop odd → (optionally fail one rank) → Parquet in `output_dir`.

    Parquet rather than datatrove's JsonlWriter, which needs orjson, not one of our dependencies.
    """
    steps = [GenerateDocuments(runs_dir=runs_dir, sleep_seconds=sleep_seconds), DropOddIndex()]
    if fail_rank is not None:
        steps.append(FailOnRank(fail_rank, fail_mode))
    steps.append(ParquetWriter(output_dir))
    return steps


def copy_parquet(input_dir: str, output_dir: str) -> list:
    """A second phase: read the first phase's Parquet files (one per rank) and write them again."""
    return [ParquetReader(input_dir), ParquetWriter(output_dir)]
