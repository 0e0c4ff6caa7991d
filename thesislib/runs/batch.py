"""Grids of notebook runs on Dask distributed: from a laptop to a cluster.

A grid file (YAML)::

    profile: cpu                  # the profile every run starts from (default: cpu)
    runs:
      - notebook: notebooks/00_data.ipynb
        parameters:               # every value is a list of values to sweep;
          seed: [0, 1, 2]         # a scalar is shorthand for a one-value list
          device: cpu             # (a list-valued parameter is written [[1, 2, 3]])

An entry may name an experiment job (:mod:`thesislib.experiments`) instead of a notebook; its
parameters are ``seed`` and ``epochs`` (and ``teacher_dir``), its output a run folder with a record
notebook the results store reads like an executed notebook::

      - experiment: t43-c100-wrn-40-2-gn4-at
        parameters:
          seed: [0, 1, 2]

Paths are relative to the grid file. Each run's output notebook is named by its
parameters (``00_data__device=cpu__seed=1.ipynb``) in ``runs/batch/<grid name>/``.
Every name and value is checked against the notebook's typed parameters before
anything runs.

Each run is an ordinary papermill execution (:func:`~thesislib.runs.runner.run_notebook`)
with its own output notebook, executed as one task on a Dask cluster:

- by default a local cluster of ``workers`` processes on this machine;
- ``scheduler="tcp://HOST:PORT"``: the workers of an existing cluster
  (``dask scheduler`` and ``dask worker`` started by hand, or by a batch system);
- ``cluster=ClusterOptions("slurm" | "pbs", ...)``: dask-jobqueue submits one job per
  worker to SLURM or PBS (queue, cores, memory, walltime and GPUs per job).

A run whose worker dies (killed, out of memory) is retried up to ``retries`` times on
another worker, then reported failed; a failing notebook is reported at once. Every run
is reported; each completed run's glued values go into the results store
(``results.sqlite`` in the output folder) as it completes; a rerun skips every run whose
cached execution is current.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import shlex
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from tqdm.auto import tqdm

from thesislib.atomic import remove_stale_temporaries
from thesislib.paths import PROJECT_ROOT
from thesislib.runs.profiles import _yaml_problem, check_profile, resolve_parameters
from thesislib.runs.results import store_notebook
from thesislib.runs.runner import (
    RUNS_DIR,
    NotebookFailed,
    always_executes,
    cache_key,
    cached_output,
    check_output_folder,
    failed_path,
    run_notebook,
)

CLUSTERS = ("local", "slurm", "pbs")
SUBMIT_COMMANDS = {"slurm": "sbatch", "pbs": "qsub"}
DEFAULT_RETRIES = 2
CONNECT_TIMEOUT = "20s"
"""How long to try reaching a ``--scheduler`` before giving up."""
DATABASE_NAME = "results.sqlite"


@dataclass(frozen=True)
class GridRun:
    """One run of a grid: a notebook, a profile, its parameter overrides and its output path."""

    notebook: Path
    profile: str
    overrides: dict[str, Any]
    output: Path
    experiment: str | None = None
    """An experiment job's name (then ``notebook`` is unused and ``output`` is its record notebook)."""


@dataclass(frozen=True)
class GridOutcome:
    run: GridRun
    status: str  # "executed", "cached" or "failed"
    seconds: float
    error: str = ""


@dataclass(frozen=True)
class ClusterOptions:
    """Where a grid runs: a local cluster, or one job per worker on SLURM / PBS (dask-jobqueue).

    ``jobs`` workers are started, each a batch job asking for ``cores`` CPU cores, ``memory``
    (e.g. ``"16GB"``), ``walltime`` (``"HH:MM:SS"``) and ``gpus`` GPUs in ``queue``; each worker
    runs one notebook at a time. ``extra`` adds batch-system directives verbatim.
    """

    kind: str = "local"
    jobs: int = 1
    queue: str | None = None
    cores: int = 1
    memory: str = "8GB"
    walltime: str = "01:00:00"
    gpus: int = 0
    account: str | None = None
    extra: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.kind not in CLUSTERS:
            raise ValueError(f"unknown cluster {self.kind!r}; valid: {', '.join(CLUSTERS)}")
        for name in ("jobs", "cores"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"cluster {name} must be a positive integer, got {getattr(self, name)!r}")
        if not isinstance(self.gpus, int) or self.gpus < 0:
            raise ValueError(f"cluster gpus must be a non-negative integer, got {self.gpus!r}")
        if not re.fullmatch(r"(\d+-)?\d{1,3}:\d{2}(:\d{2})?", self.walltime):
            raise ValueError(f"walltime must look like HH:MM:SS (or D-HH:MM:SS), got {self.walltime!r}")
        if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", self.memory, flags=re.IGNORECASE):
            raise ValueError(f"memory must look like 16GB or 512MiB, got {self.memory!r}")


# --- the grid file -------------------------------------------------------------------------------------


def _slug(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("...").strip()
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-") or "empty"


def output_name(notebook: Path, overrides: dict[str, Any]) -> str:
    """The output file name of a run: the notebook stem then ``key=value`` pairs in name order."""
    parts = [notebook.stem] + [f"{key}={_slug(overrides[key])}" for key in sorted(overrides)]
    return "__".join(parts) + ".ipynb"


def _read_grid(grid_file: Path) -> dict[str, Any]:
    if grid_file.is_dir():
        raise ValueError(f"{grid_file} is a folder; give a grid file (YAML)")
    if not grid_file.is_file():
        raise FileNotFoundError(f"no grid file at {grid_file}")
    try:
        spec = yaml.safe_load(grid_file.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"{grid_file} is not valid YAML: {_yaml_problem(error)}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{grid_file} is not a text (UTF-8) file") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("runs"), list) or not spec["runs"]:
        raise ValueError(f"{grid_file}: a grid needs a non-empty 'runs' list (see thesislib.runs.batch)")
    unknown = set(spec) - {"profile", "runs"}
    if unknown:
        raise ValueError(
            f"{grid_file}: unknown top-level key(s) {sorted(map(str, unknown))}; valid: profile, runs"
        )
    return spec


def expand_grid(
    grid_file: str | Path, out_dir: str | Path | None = None, profile: str | None = None
) -> list[GridRun]:
    """Read a grid file and list its runs; every parameter name and value is checked before anything runs.

    ``profile`` (``thesislib batch --profile``) overrides the grid file's ``profile``.
    """
    grid_file = Path(grid_file)
    spec = _read_grid(grid_file)
    own = spec.get("profile", "cpu")
    if not isinstance(own, str):
        raise ValueError(f"{grid_file}: profile must be one of smoke, cpu, paper, got {own!r}")
    check_profile(own)
    profile = check_profile(profile or own)
    # another profile than the file's gets its own folder: its outputs have the same names
    name = grid_file.stem if profile == own else f"{grid_file.stem}-{profile}"
    out_dir = Path(out_dir) if out_dir else RUNS_DIR / "batch" / name
    runs: list[GridRun] = []
    for number, entry in enumerate(spec["runs"], start=1):
        where = f"{grid_file}, run {number}"
        if isinstance(entry, dict) and "experiment" in entry:
            runs.extend(_experiment_runs(entry, where, profile, out_dir))
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("notebook"), str):
            raise ValueError(f"{where}: needs a 'notebook' key naming a notebook file, got {entry!r}")
        unknown = set(entry) - {"notebook", "parameters"}
        if unknown:
            raise ValueError(
                f"{where}: unknown key(s) {sorted(map(str, unknown))}; valid: notebook, parameters"
            )
        notebook = (grid_file.parent / entry["notebook"]).resolve()
        if not notebook.is_file():
            raise ValueError(f"{where}: no notebook at {notebook}")
        sweep = entry.get("parameters") or {}
        if not isinstance(sweep, dict):
            raise ValueError(f"{where}: 'parameters' must map parameter names to values, got {sweep!r}")
        names = sorted(map(str, sweep))
        values = []
        for name in names:
            swept = sweep[name] if isinstance(sweep[name], list) else [sweep[name]]
            if not swept:
                raise ValueError(
                    f"{where}: parameter {name} sweeps an empty list, which would run nothing; give at "
                    f"least one value (an empty list value is written [[]])"
                )
            values.append(swept)
        for combination in itertools.product(*values):
            overrides = dict(zip(names, combination, strict=True))
            try:
                resolve_parameters(notebook, profile, overrides)  # names and types, before anything runs
            except ValueError as error:
                raise ValueError(f"{where}: {error} (a list value is written [[...]] in a grid)") from None
            runs.append(GridRun(notebook, profile, overrides, out_dir / output_name(notebook, overrides)))
    outputs = [run.output for run in runs]
    if len(set(outputs)) != len(outputs):
        raise ValueError(f"{grid_file}: two runs would write the same output notebook")
    return runs


EXPERIMENT_PARAMETERS = ("seed", "epochs", "teacher_dir")


def _experiment_runs(entry: dict[str, Any], where: str, profile: str, out_dir: Path) -> list[GridRun]:
    """The runs of an ``experiment:`` entry (one per parameter combination), checked before anything runs."""
    from thesislib.paths import JOB_PROFILES
    from thesislib.experiments.runner import run_folder
    from thesislib.experiments.spec import get_experiment

    unknown = set(entry) - {"experiment", "parameters"}
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {sorted(map(str, unknown))}; valid: experiment, parameters"
        )
    name = str(entry["experiment"])
    try:
        experiment = get_experiment(name)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    if experiment.blocked:
        raise ValueError(f"{where}: experiment {name} cannot run yet: {experiment.blocked}")
    if profile not in JOB_PROFILES:
        raise ValueError(
            f"{where}: experiments run in the profiles {', '.join(JOB_PROFILES)}, not {profile!r}"
        )
    sweep = entry.get("parameters") or {}
    if not isinstance(sweep, dict) or set(sweep) - set(EXPERIMENT_PARAMETERS):
        raise ValueError(
            f"{where}: an experiment's parameters are {', '.join(EXPERIMENT_PARAMETERS)}; got {sweep!r}"
        )
    names = sorted(sweep)
    values = [sweep[key] if isinstance(sweep[key], list) else [sweep[key]] for key in names]
    runs = []
    for combination in itertools.product(*values):
        overrides = dict(zip(names, combination, strict=True))
        folder = run_folder(out_dir, name, int(overrides.get("seed", 0)))
        runs.append(GridRun(Path(name), profile, overrides, folder / f"{folder.name}.ipynb", experiment=name))
    return runs


# --- one run on a worker -------------------------------------------------------------------------------


def _execute(run: GridRun) -> GridOutcome:
    """Run one grid entry (on a Dask worker); a failing notebook is an outcome, not an exception."""
    start = time.perf_counter()
    if run.experiment is not None:
        from thesislib.experiments.runner import run_experiment

        try:
            run_experiment(
                run.experiment,
                run.output.parent.parent,
                profile=run.profile,
                seed=int(run.overrides.get("seed", 0)),
                epochs=run.overrides.get("epochs"),
                teacher_dir=run.overrides.get("teacher_dir"),
                progress=False,
            )
        except Exception as error:  # one failed run of the grid
            return GridOutcome(run, "failed", time.perf_counter() - start, f"{type(error).__name__}: {error}")
        return GridOutcome(run, "executed", time.perf_counter() - start)
    try:
        result = run_notebook(run.notebook, run.profile, run.overrides, run.output, progress=False)
    except NotebookFailed as error:
        return GridOutcome(run, "failed", time.perf_counter() - start, str(error))
    except Exception as error:  # anything else a run can raise: still one failed run of the grid
        return GridOutcome(run, "failed", time.perf_counter() - start, f"{type(error).__name__}: {error}")
    return GridOutcome(run, "executed" if result.executed else "cached", result.seconds)


def _is_current(run: GridRun) -> bool:
    if run.experiment is not None:  # the job itself resumes or reloads from its checkpoints
        return False
    if always_executes(run.notebook):
        return False
    parameters = resolve_parameters(run.notebook, run.profile, run.overrides)
    return cached_output(run.output, cache_key(run.notebook, run.profile, parameters))


# --- clusters ------------------------------------------------------------------------------------------


def jobqueue_cluster(options: ClusterOptions) -> Any:
    """A dask-jobqueue ``SLURMCluster`` or ``PBSCluster`` for ``options`` (no jobs submitted yet).

    Each job runs one worker with one thread (one notebook at a time) on ``cores`` cores, so a GPU
    job's notebook has the job's GPUs to itself. ``cluster.job_script()`` shows the batch script.
    """
    import dask_jobqueue

    if options.kind not in ("slurm", "pbs"):
        raise ValueError(f"{options.kind!r} is not a batch system; use slurm or pbs")
    common: dict[str, Any] = {
        "cores": 1,  # worker threads: one notebook at a time per job
        "processes": 1,
        "memory": options.memory,
        "walltime": options.walltime,
        "queue": options.queue,
        "account": options.account,
        "python": sys.executable,
        "scheduler_options": {"dashboard_address": ":0"},
        "job_script_prologue": _prologue(),
    }
    extra = list(options.extra)
    if options.kind == "slurm":
        if options.gpus:
            extra.append(f"--gres=gpu:{options.gpus}")
        return dask_jobqueue.SLURMCluster(**common, job_cpu=options.cores, job_extra_directives=extra)
    if options.kind == "pbs":
        resources = f"select=1:ncpus={options.cores}:mem={options.memory.upper().replace('IB', 'B')}"
        if options.gpus:
            resources += f":ngpus={options.gpus}"
        return dask_jobqueue.PBSCluster(**common, resource_spec=resources, job_extra_directives=extra)
    raise ValueError(f"{options.kind!r} is not a batch system; use slurm or pbs")


def _prologue() -> list[str]:
    """Job-script lines: the project folder and this session's data settings, for every worker job."""
    lines = [f"cd {shlex.quote(str(PROJECT_ROOT))}"]
    for name in ("THESISLIB_DATA", "THESISLIB_CACHE", "THESISLIB_OFFLINE", "THESISLIB_KEY_FILE"):
        if name in os.environ:
            lines.append(f"export {name}={shlex.quote(os.environ[name])}")
    return lines


@contextlib.contextmanager
def _client(
    workers: int, scheduler: str | None, cluster: ClusterOptions | None, retries: int
) -> Iterator[Any]:
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": retries}):
        if scheduler:
            try:
                client = Client(scheduler, timeout=CONNECT_TIMEOUT)
            except OSError as error:
                raise ValueError(f"cannot reach the Dask scheduler at {scheduler}: {error}") from None
            with client:
                client.run_on_scheduler(_set_allowed_failures, retries)
                yield client
        elif cluster is not None and cluster.kind != "local":
            submit = SUBMIT_COMMANDS[cluster.kind]
            if shutil.which(submit) is None:
                raise ValueError(
                    f"--cluster {cluster.kind} needs the {submit} command, which is not on PATH: run "
                    "thesislib batch on the cluster's login node (or use --workers N / --scheduler)"
                )
            with jobqueue_cluster(cluster) as batch_cluster:
                batch_cluster.scale(jobs=cluster.jobs)
                with Client(batch_cluster) as client:
                    yield client
        else:
            with (
                LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",
                    silence_logs=logging.ERROR,
                ) as local,
                Client(local) as client,
            ):
                yield client


def _set_allowed_failures(retries: int, dask_scheduler: Any = None) -> None:
    dask_scheduler.allowed_failures = retries


def _failure_of(error: BaseException, retries: int) -> str:
    from distributed.scheduler import KilledWorker

    if isinstance(error, KilledWorker):
        return (
            f"the worker running it died {retries + 1} time(s) (killed, or out of memory); "
            f"gave up after {retries} retr{'y' if retries == 1 else 'ies'}"
        )
    return f"{type(error).__name__}: {error}"


def run_grid(
    grid_file: str | Path,
    workers: int = 1,
    out_dir: str | Path | None = None,
    *,
    scheduler: str | None = None,
    cluster: ClusterOptions | None = None,
    retries: int = DEFAULT_RETRIES,
    database: str | Path | None = None,
    echo: Callable[[str], None] | None = None,
    profile: str | None = None,
) -> list[GridOutcome]:
    """Execute every run of a grid on Dask; return one outcome per run, in grid order.

    ``workers`` sizes the local cluster; ``scheduler`` joins an existing one; ``cluster`` runs on
    SLURM/PBS. ``database`` (default ``<out>/results.sqlite``) receives each run's results as it
    completes. ``echo`` receives the dashboard address (default: printed to stderr). ``profile``
    overrides the grid file's profile. The local cluster starts its workers as new processes
    (spawn): a script that calls this must do so under ``if __name__ == "__main__":``.
    """
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    if not isinstance(retries, int) or retries < 0:
        raise ValueError(f"--retries must be 0 or more, got {retries}")
    echo = echo or (lambda text: print(text, file=sys.stderr))
    runs = expand_grid(grid_file, out_dir, profile)
    first = runs[0]
    folder = check_output_folder(first.output.parent.parent if first.experiment else first.output.parent)
    folder.mkdir(parents=True, exist_ok=True)
    database = Path(database) if database else folder / DATABASE_NAME
    outcomes: dict[int, GridOutcome] = {}
    pending: list[int] = []
    for index, run in enumerate(runs):
        if _is_current(run):
            failed_path(run.output).unlink(missing_ok=True)
            outcomes[index] = GridOutcome(run, "cached", 0.0)
            store_notebook(database, run.output)
        else:
            pending.append(index)
    if pending:
        _run_pending(runs, pending, outcomes, workers, scheduler, cluster, retries, database, echo, grid_file)
    remove_stale_temporaries(folder)
    return [outcomes[index] for index in range(len(runs))]


def _run_pending(
    runs: list[GridRun],
    pending: list[int],
    outcomes: dict[int, GridOutcome],
    workers: int,
    scheduler: str | None,
    cluster: ClusterOptions | None,
    retries: int,
    database: Path,
    echo: Callable[[str], None],
    grid_file: str | Path,
) -> None:
    from distributed import as_completed

    with _client(workers, scheduler, cluster, retries) as client:
        echo(f"Dask dashboard: {client.dashboard_link}")
        token = uuid.uuid4().hex[:8]  # a fresh task key per grid run, also on a long-lived scheduler
        futures = {
            client.submit(_execute, runs[index], key=f"{runs[index].output.stem}-{token}", pure=False): index
            for index in pending
        }
        with tqdm(
            total=len(runs), initial=len(runs) - len(pending), desc=Path(grid_file).stem, unit="run"
        ) as bar:
            for future in as_completed(futures):
                index = futures[future]
                try:
                    outcome = future.result()
                except Exception as error:  # the worker died too often, the task could not be sent, ...
                    outcome = GridOutcome(runs[index], "failed", 0.0, _failure_of(error, retries))
                outcomes[index] = outcome
                try:
                    store_notebook(database, outcome.run.output)
                except (OSError, ValueError) as error:
                    echo(
                        f"warning: results store {database} not updated for {outcome.run.output.name}: {error}"
                    )
                bar.update()
