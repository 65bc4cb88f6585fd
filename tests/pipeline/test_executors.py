"""pipeline/executors/ on real executors: local processes, a local Ray cluster, the local Slurm cluster."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mdr import cli
from mdr.errors import PhaseFailedError
from mdr.layout import Phase
from mdr.pipeline.cli import _executor_options
from mdr.pipeline.executors import ExecutorOptions, RayOptions, SlurmOptions, make_executor, run_phases
from tests.pipeline.tiny_steps import copy_parquet, generate_filter_write

TASKS = 3
KEPT_IDS = {f"{rank}-{i}" for rank in range(TASKS) for i in (0, 2)}  # 4 documents per rank, odd indices dropped
SLURM_POLL = dict(poll_seconds=0.5, timeout_s=300)


def tiny_phase(root: Path, name: str = "tiny", **kwargs) -> Phase:
    (root / "runs").mkdir(parents=True, exist_ok=True)
    pipeline = generate_filter_write(str(root / "out"), runs_dir=str(root / "runs"), **kwargs)
    return Phase(name, pipeline, TASKS, str(root / "logs" / name))


def queued_jobs(job_name: str) -> str:
    return subprocess.run(["squeue", "--noheader", f"--name={job_name}"], capture_output=True, text=True).stdout


def output_ids(folder: Path) -> set[str]:
    return {i for path in folder.glob("*.parquet") for i in pq.read_table(path, columns=["id"])["id"].to_pylist()}


def runs_per_rank(root: Path) -> list[int]:
    return [len((root / "runs" / f"{rank}.runs").read_text().split()) for rank in range(TASKS)]


def assert_complete(root: Path, phase: Phase, merged_stats: bool = True) -> None:
    logs = Path(phase.logging_dir)
    names = [f"{rank:05d}" for rank in range(TASKS)]
    assert sorted(p.name for p in (root / "out").glob("*.parquet")) == [f"000_{n}.parquet" for n in names]
    assert output_ids(root / "out") == KEPT_IDS
    assert sorted(p.name for p in (logs / "completions").iterdir()) == names
    assert sorted(p.name for p in (logs / "stats").iterdir()) == [f"{n}.json" for n in names]
    assert sorted(p.name for p in (logs / "logs").glob("task_*.log")) == [f"task_{n}.log" for n in names]
    if not merged_stats:
        return
    merged = json.loads((logs / "stats.json").read_text())  # every rank's stats, also after a resume
    assert merged[1]["stats"]["dropped_odd_index"]["total"] == 6 and merged[0]["stats"]["generated"]["total"] == 12


def run_then_resume_one_rank(root: Path, options: ExecutorOptions) -> None:
    phase = tiny_phase(root)
    run_phases([phase], options)
    assert_complete(root, phase)
    assert runs_per_rank(root) == [1, 1, 1]

    (Path(phase.logging_dir) / "completions" / "00001").unlink()
    (root / "out" / "000_00001.parquet").unlink()  # ParquetWriter's file name: <file index>_<rank>
    run_phases([tiny_phase(root)], options)
    assert_complete(root, phase)
    assert runs_per_rank(root) == [1, 2, 1]  # only the rank without a completion ran again

    run_phases([tiny_phase(root)], options)  # everything complete: nothing runs
    assert runs_per_rank(root) == [1, 2, 1]


# --- local -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("start_method", ["forkserver", "fork"])
def test_local_runs_all_ranks_and_resumes_only_the_missing_one(tmp_path, job_pythonpath, start_method):
    run_then_resume_one_rank(tmp_path, ExecutorOptions("local", workers=2, start_method=start_method))


def test_local_console_shows_no_task_info_logs(tmp_path, job_pythonpath, capfd):
    run_phases([tiny_phase(tmp_path)], ExecutorOptions("local", workers=2))
    err = capfd.readouterr().err
    assert "INFO" not in err and "SUCCESS" not in err and "Launching pipeline" not in err
    assert "Launching pipeline for rank=0" in (tmp_path / "logs" / "tiny" / "logs" / "task_00000.log").read_text()


@pytest.mark.parametrize("start_method", ["forkserver", "fork"])
def test_local_task_exception_fails_the_phase_naming_its_log(tmp_path, job_pythonpath, start_method):
    phase = tiny_phase(tmp_path, fail_rank=1)
    with pytest.raises(PhaseFailedError) as error:
        run_phases([phase], ExecutorOptions("local", workers=2, start_method=start_method))
    log = Path(phase.logging_dir) / "logs" / "task_00001.log"
    assert str(error.value) == (f"phase 'tiny': task 1 exited with code 1: planned failure of rank 1; see {log}")
    assert "ValueError: planned failure of rank 1" in log.read_text()
    assert not (Path(phase.logging_dir) / "completions" / "00001").exists()


@pytest.mark.parametrize("start_method", ["forkserver", "fork"])
def test_local_worker_process_death_fails_the_phase_instead_of_hanging(tmp_path, job_pythonpath, start_method):
    # os._exit stands for the OOM killer: datatrove's own Pool-based run waits forever for such a task.
    phase = tiny_phase(tmp_path, fail_rank=1, fail_mode="exit")
    with pytest.raises(PhaseFailedError, match=r"^phase 'tiny': task 1 exited with code 3; see .*task_00001\.log$"):
        run_phases([phase], ExecutorOptions("local", workers=2, start_method=start_method))


def test_local_phases_run_in_order(tmp_path, job_pythonpath):
    first = tiny_phase(tmp_path, "first")
    second = Phase("second", copy_parquet(str(tmp_path / "out"), str(tmp_path / "copy")), TASKS,
                   str(tmp_path / "logs" / "second"))
    run_phases([first, second], ExecutorOptions("local", workers=2))
    assert output_ids(tmp_path / "copy") == KEPT_IDS


def one_task_phase(root: Path, name: str, **kwargs) -> Phase:
    (root / "runs" / name).mkdir(parents=True, exist_ok=True)
    pipeline = generate_filter_write(str(root / "out" / name), runs_dir=str(root / "runs" / name), **kwargs)
    return Phase(name, pipeline, 1, str(root / "logs" / name))


def pids(root: Path, name: str) -> list[str]:
    return (root / "runs" / name / "0.runs").read_text().split()


@pytest.mark.parametrize("start_method", ["forkserver", "fork"])
def test_local_one_task_phases_in_a_row_share_one_process(tmp_path, job_pythonpath, start_method):
    options = ExecutorOptions("local", workers=2, start_method=start_method)
    phases = [one_task_phase(tmp_path, "a"), tiny_phase(tmp_path, "b"), one_task_phase(tmp_path, "c"),
              one_task_phase(tmp_path, "d")]
    run_phases(phases, options)
    assert pids(tmp_path, "c") == pids(tmp_path, "d") != pids(tmp_path, "a")  # b's 3 tasks stand between a and c
    for name in "acd":
        logs = tmp_path / "logs" / name
        assert [p.name for p in (logs / "completions").iterdir()] == ["00000"]
        assert json.loads((logs / "stats.json").read_text())[1]["stats"]["dropped_odd_index"] == 2
        assert "Launching pipeline for rank=0" in (logs / "logs" / "task_00000.log").read_text()
        assert output_ids(tmp_path / "out" / name) == {"0-0", "0-2"}


@pytest.mark.parametrize("fail_mode", ["raise", "exit"])
def test_local_failure_in_a_shared_process_names_its_phase_and_a_rerun_resumes_there(tmp_path, job_pythonpath,
                                                                                     fail_mode):
    options = ExecutorOptions("local", workers=1)
    phases = [one_task_phase(tmp_path, "a"), one_task_phase(tmp_path, "b", fail_rank=0, fail_mode=fail_mode),
              one_task_phase(tmp_path, "c")]
    with pytest.raises(PhaseFailedError) as error:
        run_phases(phases, options)
    log = tmp_path / "logs" / "b" / "logs" / "task_00000.log"
    how = "exited with code 1: planned failure of rank 0" if fail_mode == "raise" else "exited with code 3"
    assert str(error.value) == f"phase 'b': task 0 {how}; see {log}"
    assert (tmp_path / "logs" / "a" / "completions" / "00000").exists()
    assert not (tmp_path / "logs" / "b" / "completions").exists() and not (tmp_path / "runs" / "c" / "0.runs").exists()

    phases[1] = one_task_phase(tmp_path, "b")  # the cause fixed: the rerun starts at b (a ran once, in the first run)
    run_phases(phases, options)
    assert len(pids(tmp_path, "a")) == 1 and pids(tmp_path, "c") == pids(tmp_path, "b") != pids(tmp_path, "a")


def run_args(*flags: str):
    return cli.parser().parse_args(["run", "refinedweb", "--input", "in", "--output", "out", *flags])


def test_cli_builds_the_executor_options():
    args = run_args("--executor", "slurm", "--no-wait", "--slurm-time", "1:00:00", "--slurm-cpus-per-task", "2",
                    "--slurm-mem-per-cpu-gb", "1.5")
    options = _executor_options(args, workers=8)
    assert (options.kind, options.workers, options.wait) == ("slurm", -1, False)  # the cluster decides, not nproc
    assert (options.slurm.time, options.slurm.cpus_per_task, options.slurm.mem_per_cpu_gb) == ("1:00:00", 2, 1.5)
    assert _executor_options(run_args(), workers=8).workers == 8
    assert _executor_options(run_args("--executor", "ray", "--workers", "3"), workers=3).workers == 3
    # The `mdr` command's own process forks its local task processes on Linux; a process calling main([...]) and
    # other callers of the executors (ablations, token files) get a forkserver
    args = run_args()
    assert _executor_options(args, workers=8).start_method == "forkserver"
    args.command_process = True
    assert _executor_options(args, workers=8).start_method == ("fork" if sys.platform == "linux" else "forkserver")
    assert ExecutorOptions().start_method == "forkserver"
    with pytest.raises(ValueError, match="unknown executor 'dask'"):
        ExecutorOptions("dask")


def test_slurm_sbatch_script_without_partition_and_with_memory_in_megabytes(tmp_path):
    options = ExecutorOptions("slurm", slurm=SlurmOptions(mem_per_cpu_gb=1.5, sbatch_args={"account": "lab"}))
    executor = make_executor(tiny_phase(tmp_path), options)
    script = executor.get_launch_file_contents(executor.get_sbatch_args(TASKS), "launch_pickled_pipeline x")
    assert "--partition" not in script and "--qos" not in script
    assert "#SBATCH --mem-per-cpu=1536M" in script and "#SBATCH --account=lab" in script
    assert "#SBATCH --array=0-2\n" in script
    assert f"export PATH={Path(options.slurm.python_env) / 'bin'}:$PATH" in script


# --- Ray -------------------------------------------------------------------------------------------------------------

# datatrove 0.10.1 passes placement groups the way Ray 2.60 deprecates
ray_warnings = pytest.mark.filterwarnings("ignore:placement_group.*deprecated:DeprecationWarning")



@ray_warnings
def test_ray_runs_all_ranks_and_resumes_only_the_missing_one(tmp_path, ray_address):
    run_then_resume_one_rank(tmp_path, ExecutorOptions("ray", ray=RayOptions(address=ray_address, mem_per_cpu_gb=0.5)))


@ray_warnings
def test_ray_task_exception_fails_the_phase_naming_its_log(tmp_path, ray_address):
    phase = tiny_phase(tmp_path, fail_rank=1)
    with pytest.raises(PhaseFailedError) as error:
        run_phases([phase], ExecutorOptions("ray", ray=RayOptions(address=ray_address, mem_per_cpu_gb=0.5)))
    log = Path(phase.logging_dir) / "logs" / "task_00001.log"
    assert str(error.value) == (f"phase 'tiny': 1 of 3 tasks did not complete; task 1 failed: planned failure of "
                                f"rank 1; see {log}")


@ray_warnings
def test_ray_task_process_death_fails_the_phase_instead_of_hanging(tmp_path, ray_address):
    phase = tiny_phase(tmp_path, fail_rank=1, fail_mode="exit")
    with pytest.raises(PhaseFailedError, match=r"task 1 failed: task process exited with code 3; see .*task_00001"):
        run_phases([phase], ExecutorOptions("ray", ray=RayOptions(address=ray_address, mem_per_cpu_gb=0.5)))


# --- Slurm -----------------------------------------------------------------------------------------------------------


def test_slurm_runs_all_ranks_and_resumes_only_the_missing_one(tmp_path, slurm_cluster):
    run_then_resume_one_rank(tmp_path, ExecutorOptions("slurm", slurm=SlurmOptions(**SLURM_POLL)))


def test_slurm_second_phase_waits_for_the_first(tmp_path, slurm_cluster):
    # The first phase is slow: without the afterok dependency the second would find no input files.
    first = tiny_phase(tmp_path, "first", sleep_seconds=2)
    second = Phase("second", copy_parquet(str(tmp_path / "out"), str(tmp_path / "copy")), TASKS,
                   str(tmp_path / "logs" / "second"))
    executors = run_phases([first, second], ExecutorOptions("slurm", slurm=SlurmOptions(**SLURM_POLL)))
    assert executors[1].depends_job_id == executors[0].job_id
    assert "#SBATCH --array=0-2" in (Path(second.logging_dir) / "launch_script.slurm").read_text()
    assert output_ids(tmp_path / "copy") == KEPT_IDS
    assert len(list((Path(second.logging_dir) / "completions").iterdir())) == TASKS


def test_slurm_task_exception_fails_the_phase_naming_its_log(tmp_path, slurm_cluster):
    first = tiny_phase(tmp_path, "first", fail_rank=1)
    second = Phase("second", copy_parquet(str(tmp_path / "out"), str(tmp_path / "copy")), TASKS,
                   str(tmp_path / "logs" / "second"))
    executors = []
    with pytest.raises(PhaseFailedError) as error:
        executors = run_phases([first, second], ExecutorOptions("slurm", slurm=SlurmOptions(**SLURM_POLL)))
    log = Path(first.logging_dir) / "logs" / "task_00001.log"
    assert str(error.value).startswith("phase 'first': Slurm job ")
    assert str(error.value).endswith(f"ended without completing, task 1: planned failure of rank 1; see {log}")
    assert not executors and not (tmp_path / "copy").exists()
    for phase in (first, second):  # the dependent phase, which would wait forever, was cancelled
        assert queued_jobs(make_executor(phase, ExecutorOptions("slurm")).job_name) == ""


def test_slurm_no_wait_returns_at_once_and_refuses_a_second_submission_while_queued(tmp_path, slurm_cluster):
    phase = tiny_phase(tmp_path, sleep_seconds=3)
    options = ExecutorOptions("slurm", wait=False, slurm=SlurmOptions(**SLURM_POLL))
    [executor] = run_phases([phase], options)
    assert queued_jobs(executor.job_name)
    with pytest.raises(PhaseFailedError, match=f"still queued; .* \\(scancel --name={executor.job_name}\\)$"):
        run_phases([tiny_phase(tmp_path)], options)
    deadline = time.monotonic() + 120
    while queued_jobs(executor.job_name) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert_complete(tmp_path, phase, merged_stats=False)  # run_phases merges stats.json only when it waits
    assert runs_per_rank(tmp_path) == [1, 1, 1]


def test_slurm_task_killed_before_writing_its_log_names_the_slurm_log(tmp_path, slurm_cluster):
    phase = tiny_phase(tmp_path, fail_rank=1, fail_mode="exit")
    with pytest.raises(PhaseFailedError, match=r"ended without completing; see .*/slurm_logs/\d+_\d+\.out$"):
        run_phases([phase], ExecutorOptions("slurm", slurm=SlurmOptions(**SLURM_POLL)))
