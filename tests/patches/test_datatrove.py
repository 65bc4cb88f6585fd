"""mdr's changes to datatrove's executors apply to the datatrove series they were tested with, and refuse any other
loudly, on the driver and in the task processes, patching nothing."""

from importlib import metadata

import pytest
from datatrove.executor import base as datatrove_base
from datatrove.executor import ray as datatrove_ray

from mdr.errors import PhaseFailedError
from mdr.patches import UntestedVersionError
from mdr.patches.datatrove import rank_worker
from mdr.pipeline.executors import ExecutorOptions, run_phases
from tests.pipeline.test_executors import tiny_phase


@pytest.fixture
def untested_datatrove(monkeypatch):
    installed = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: "0.11.0" if name == "datatrove" else installed(name))


def test_an_untested_datatrove_fails_loudly_and_patches_nothing(untested_datatrove):
    original = datatrove_ray.RankWorker
    with pytest.raises(UntestedVersionError, match=r"tested with datatrove 0\.10\.x; 0\.11\.0 is installed"):
        with rank_worker():
            pass
    assert datatrove_ray.RankWorker is original


def test_a_local_run_on_an_untested_datatrove_fails_naming_both_versions(tmp_path, job_pythonpath,
                                                                         untested_datatrove):
    original = datatrove_base.add_task_logger
    # "fork": the task process sees the faked version too
    with pytest.raises(PhaseFailedError, match=r"^phase 'tiny': task 0 exited with code 1: mdr patches datatrove's "
                                               r"internals .* tested with datatrove 0\.10\.x; 0\.11\.0 is installed"):
        run_phases([tiny_phase(tmp_path)], ExecutorOptions("local", workers=1, start_method="fork"))
    assert datatrove_base.add_task_logger is original
