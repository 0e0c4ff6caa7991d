"""Grids on Dask distributed: a real scheduler and two workers on 127.0.0.1, one killed mid-grid.

Also the batch script dask-jobqueue writes for a SLURM (and PBS) GPU grid; there is no batch
system here, so the script is checked, not submitted.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import psutil
import pytest

from thesislib import cli
from thesislib.atomic import _HOST
from thesislib.runs import ClusterOptions, collect_results, read_sqlite
from thesislib.runs import batch as batch_module
from thesislib.runs.batch import jobqueue_cluster

BIN = Path(sys.executable).parent
RUNS = 4


def _notebook(path: Path) -> Path:
    """A smoke notebook: a few seconds of work, then glued values."""
    contents = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell('profile = "cpu"\nseed = 0\nseconds = 3.0')
    parameters.metadata["tags"] = ["parameters"]
    contents.cells = [
        parameters,
        nbformat.v4.new_code_cell(
            "import os, time\nimport scrapbook as sb\ntime.sleep(seconds)\n"
            "sb.glue('seed_squared', seed * seed)\nsb.glue('worker_pid', os.getppid())"
        ),
    ]
    contents.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(contents, path)
    return path


def _batch_command(grid: Path, scheduler: str, out: Path) -> list[str]:
    """``thesislib batch GRID --scheduler ADDRESS --out OUT`` as an argument list."""
    return [str(BIN / "thesislib"), "batch", str(grid), "--scheduler", scheduler, "--out", str(out)]


def _running_on(out: Path, worker_pids: set[int]) -> int | None:
    """The pid of a worker whose run is writing into ``out`` now (its temporary output names the pid)."""
    for path in out.glob(f".*.{_HOST}-*"):
        pid = int(path.name.rsplit(f".{_HOST}-", 1)[1].split("-", 1)[0])
        if pid in worker_pids:
            return pid
    return None


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[dict]:
    """``dask scheduler`` and two ``dask worker`` processes (no nanny: a killed worker stays dead)."""
    scheduler_file = tmp_path / "scheduler.json"
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    log = open(tmp_path / "dask.log", "wb")  # noqa: SIM115
    processes = [
        subprocess.Popen(
            [
                str(BIN / "dask"),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--dashboard-address",
                "127.0.0.1:0",
                "--scheduler-file",
                str(scheduler_file),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    ]
    _wait_for(scheduler_file.is_file, 60, "the scheduler")
    address = json.loads(scheduler_file.read_text())["address"]
    workers = [
        subprocess.Popen(
            [
                str(BIN / "dask"),
                "worker",
                address,
                "--nthreads",
                "1",
                "--no-nanny",
                "--host",
                "127.0.0.1",
                "--name",
                f"w{k}",
                "--death-timeout",
                "60",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        for k in range(2)
    ]
    processes += workers
    _wait_for(lambda: len(json.loads(scheduler_file.read_text()).get("workers", {})) >= 0, 5, "workers")
    from distributed import Client

    with Client(address, timeout="30s") as client:
        client.wait_for_workers(2, timeout=60)
    leftovers: list[int] = []
    try:
        yield {"address": address, "workers": workers, "leftovers": leftovers}
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for pid in leftovers:  # kernels orphaned by the killed worker
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        log.close()


def test_grid_survives_a_worker_killed_mid_grid(dask_cluster: dict, tmp_path: Path) -> None:
    _notebook(tmp_path / "smoke.ipynb")
    grid = tmp_path / "grid.yml"
    grid.write_text(
        f"profile: smoke\nruns:\n  - notebook: smoke.ipynb\n    parameters:\n      seed: {list(range(RUNS))}\n"
    )
    out = tmp_path / "out"
    command = _batch_command(grid, dask_cluster["address"], out)
    # --retries 0: the killed worker's run is reported failed, not retried (a rerun completes it).
    batch = subprocess.Popen(
        [*command, "--retries", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    worker_pids = {worker.pid for worker in dask_cluster["workers"]}
    _wait_for(lambda: _running_on(out, worker_pids) is not None, 120, "a run in progress on a worker")
    victim = _running_on(out, worker_pids)
    assert victim is not None
    dask_cluster["leftovers"].extend(child.pid for child in psutil.Process(victim).children(recursive=True))
    os.kill(victim, signal.SIGKILL)  # mid-run: its output notebook is half written
    stdout, stderr = batch.communicate(timeout=300)
    assert batch.returncode == 1, stdout + stderr
    report = [
        line for line in stdout.splitlines() if line.strip().startswith(("executed", "failed", "cached"))
    ]
    assert len(report) == RUNS, stdout  # every run is reported
    failed = [line for line in report if line.strip().startswith("failed")]
    assert len(failed) >= 1 and "worker running it died" in stderr
    assert f"{RUNS - len(failed)} of {RUNS} runs completed, {len(failed)} failed" in stdout
    assert "Traceback" not in stderr

    def check_folder() -> set[str]:
        assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "no half-written file is left"
        completed = set()
        for path in out.glob("*.ipynb"):
            metadata = nbformat.read(path, as_version=4).metadata  # every output reads as a whole notebook
            assert "cache_key" in metadata["thesislib"], path
            completed.add(str(path))
        table = collect_results(out)
        store = read_sqlite(out / "results.sqlite")
        assert set(store.path) == set(table.path) == completed  # the store matches the outputs
        assert sorted(map(tuple, store.drop(columns="value").values.tolist())) == sorted(
            map(tuple, table.drop(columns="value").values.tolist())
        )
        return completed

    assert len(check_folder()) == RUNS - len(failed)
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    statuses = [
        line.split()[0]
        for line in rerun.stdout.splitlines()
        if line.strip().startswith(("executed", "cached"))
    ]
    assert statuses.count("executed") == len(failed) and statuses.count("cached") == RUNS - len(failed)
    assert len(check_folder()) == RUNS
    values = collect_results(out)
    squares = sorted(values[values.name == "seed_squared"].value)
    assert squares == [seed * seed for seed in range(RUNS)]


def test_a_killed_worker_is_retried_on_another(dask_cluster: dict, tmp_path: Path) -> None:
    """With retries (the default), a run whose worker dies runs again elsewhere and completes."""
    _notebook(tmp_path / "smoke.ipynb")
    grid = tmp_path / "grid.yml"
    grid.write_text(
        "runs:\n  - notebook: smoke.ipynb\n    parameters:\n      seed: [5]\n      seconds: [4.0]\n"
    )
    out = tmp_path / "out"
    command = _batch_command(grid, dask_cluster["address"], out)
    batch = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    worker_pids = {worker.pid for worker in dask_cluster["workers"]}
    _wait_for(lambda: _running_on(out, worker_pids) is not None, 120, "the run to start")
    pid = _running_on(out, worker_pids)
    assert pid is not None
    dask_cluster["leftovers"].extend(child.pid for child in psutil.Process(pid).children(recursive=True))
    os.kill(pid, signal.SIGKILL)
    stdout, stderr = batch.communicate(timeout=300)
    assert batch.returncode == 0, stdout + stderr
    assert "1 of 1 runs completed, 0 failed" in stdout
    assert "Dask dashboard:" in stderr


# -- batch systems (no SLURM or PBS here: the generated job scripts are checked) ---------------------


def test_slurm_job_script_for_a_gpu_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THESISLIB_DATA", "/shared/data sets")
    options = ClusterOptions(
        "slurm", jobs=4, queue="gpu", cores=8, memory="32GB", walltime="12:00:00", gpus=1, account="thesis"
    )
    cluster = jobqueue_cluster(options)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    lines = script.splitlines()
    for directive in ("-p gpu", "-A thesis", "--cpus-per-task=8", "-t 12:00:00", "--gres=gpu:1", "-n 1"):
        assert f"#SBATCH {directive}" in lines, (directive, script)
    assert any(line.startswith("#SBATCH --mem=") for line in lines)
    assert "export THESISLIB_DATA='/shared/data sets'" in lines
    command = next(line for line in lines if "distributed.cli.dask_worker" in line)
    assert command.startswith(f"{sys.executable} -m distributed.cli.dask_worker tcp://")
    assert "--nthreads 1" in command  # one notebook at a time per GPU job


def test_pbs_job_script_for_a_gpu_grid() -> None:
    cluster = jobqueue_cluster(
        ClusterOptions("pbs", queue="gpuq", cores=4, memory="16GB", walltime="02:00:00", gpus=2)
    )
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#PBS -q gpuq" in script and "#PBS -l walltime=02:00:00" in script
    assert "#PBS -l select=1:ncpus=4:mem=16GB:ngpus=2" in script


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cluster", "slurm"], "needs the sbatch command"),
        (["--cluster", "pbs", "--walltime", "tomorrow"], "walltime must look like HH:MM:SS"),
        (["--cluster", "slurm", "--memory", "lots"], "memory must look like 16GB"),
        (["--cluster", "slurm", "--gpus", "-1"], "gpus must be a non-negative integer"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--retries", "-1"], "--retries must be 0 or more"),
        (["--scheduler", "tcp://127.0.0.1:1"], "cannot reach the Dask scheduler"),
    ],
)
def test_batch_option_mistakes_are_one_line(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.setattr(batch_module, "CONNECT_TIMEOUT", "2s")
    _notebook(tmp_path / "smoke.ipynb")
    grid = tmp_path / "grid.yml"
    grid.write_text("runs:\n  - notebook: smoke.ipynb\n")
    assert cli.main(["batch", str(grid), "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
