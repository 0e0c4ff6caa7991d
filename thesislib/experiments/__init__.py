"""Every experiment of the thesis at its own scale, as named jobs for one GPU or several (issue 16).

- :mod:`~thesislib.experiments.spec`: :data:`EXPERIMENTS`, typed :class:`Experiment` specs whose
  settings are labelled ``thesis`` (with the location), ``delegated`` or ``chosen`` (with the reason),
  and a GPU-hour estimate for each;
- :mod:`~thesislib.experiments.models`: the one adapter to the existing model builders;
- :mod:`~thesislib.experiments.data`: CIFAR / ImageNet / Cityscapes batches sharded over processes,
  top-1/top-5 error and mean IoU;
- :mod:`~thesislib.experiments.runner`: :func:`~thesislib.experiments.runner.run_experiment` on the shared Trainer (DDP, AMP,
  atomic checkpoints and resume) writing a record notebook the results store reads;
- :mod:`~thesislib.experiments.table`: :func:`chapter_table`, the thesis' numbers beside ours or the
  command that would produce them.

``thesislib experiments`` lists the jobs; ``thesislib experiments run NAME [--nproc N]`` runs one.
"""

from thesislib.experiments.spec import (
    EXPERIMENTS,
    Experiment,
    ModelRef,
    Setting,
    blocked_experiments,
    chosen,
    delegated,
    get_experiment,
    gpu_hours,
    thesis,
)

__all__ = [
    "EXPERIMENTS",
    "Experiment",
    "ModelRef",
    "Setting",
    "blocked_experiments",
    "chapter_table",
    "chosen",
    "delegated",
    "get_experiment",
    "gpu_hours",
    "run_experiment",
    "thesis",
]


def __getattr__(name: str):  # the runner and the table import torch-heavy modules: load them on use
    if name == "run_experiment":
        from thesislib.experiments.runner import run_experiment

        return run_experiment
    if name == "chapter_table":
        from thesislib.experiments.table import chapter_table

        return chapter_table
    raise AttributeError(name)
