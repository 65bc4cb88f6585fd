"""One torch thread per test process: on a small shared machine, torch's default of one thread per core
oversubscribes the cores and a tiny model's step gets ten times slower. Subprocesses inherit OMP_NUM_THREADS=1."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread(monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(threads)
