"""Every training experiment of chapters 4 and 5 (and SECL) as a typed, named job with labelled settings.

An :class:`Experiment` says what the thesis trained (model, data, method, teacher, schedule) and where
it reports the result (table/figure and the ``data/reference`` cell), and every setting of the paper
profile is a :class:`Setting` labelled with its provenance:

- ``thesis``: printed in the thesis (or the paper named), with its location (``§4.5.1``);
- ``delegated``: the thesis says "as in <paper>" and the value comes from that paper or its code;
- ``chosen``: not stated anywhere we can cite; chosen here, with the reason.

:data:`EXPERIMENTS` holds them by name; :func:`get_experiment` looks one up. The GPU-hour estimate of
each is arithmetic, not a measurement: (student forward + backward + teacher forward) mult-adds per
image × images per epoch × epochs, at :data:`MULT_ADDS_PER_GPU_SECOND` (see :func:`gpu_hours`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, Literal

__all__ = [
    "EXPERIMENTS",
    "MULT_ADDS_PER_GPU_SECOND",
    "Experiment",
    "ModelRef",
    "Setting",
    "blocked_experiments",
    "chosen",
    "delegated",
    "get_experiment",
    "gpu_hours",
    "slug",
    "thesis",
]

Source = Literal["thesis", "delegated", "chosen"]


@dataclasses.dataclass(frozen=True)
class Setting:
    """One paper-profile value and where it comes from (``source``: thesis, delegated or chosen)."""

    value: Any
    source: Source
    where: str

    def __post_init__(self) -> None:
        if self.source not in ("thesis", "delegated", "chosen"):
            raise ValueError(f"unknown provenance {self.source!r}; valid: thesis, delegated, chosen")
        if not self.where:
            raise ValueError("every setting needs its location (thesis/delegated) or the reason (chosen)")

    @property
    def label(self) -> str:
        prefix = {"thesis": "thesis", "delegated": "as the thesis delegates to", "chosen": "chosen here"}
        return f"{prefix[self.source]}: {self.where}"


def thesis(value: Any, where: str) -> Setting:
    """A value the thesis (or the named paper) prints at ``where``."""
    return Setting(value, "thesis", where)


def delegated(value: Any, where: str) -> Setting:
    """A value the thesis takes from another paper ("as in ..."); ``where`` names both."""
    return Setting(value, "delegated", where)


def chosen(value: Any, reason: str) -> Setting:
    """A value the thesis does not state: chosen here for ``reason``."""
    return Setting(value, "chosen", reason)


@dataclasses.dataclass(frozen=True)
class ModelRef:
    """A network through the existing builders (one adapter, :mod:`thesislib.experiments.models`).

    ``kind``: ``"moonshine"`` (:func:`thesislib.models.build_model`: ``name`` + ``block``),
    ``"compressed"`` (:func:`thesislib.models.build_model`: ``name`` + ``substitute``
    at ``setting`` or at the parameter ``budget``, ``linear``), or ``"pretrained"`` (a torchvision
    network with its published ImageNet weights: ``name`` is ``resnet34``/``resnet18``/``wide_resnet50_2``).
    """

    kind: Literal["moonshine", "compressed", "pretrained"]
    name: str
    block: str = "S"
    substitute: str | None = None
    setting: float | None = None
    budget: float | None = None
    linear: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("moonshine", "compressed", "pretrained"):
            raise ValueError(f"unknown model kind {self.kind!r}; valid: moonshine, compressed, pretrained")
        if self.setting is not None and self.budget is not None:
            raise ValueError("give a substitute's setting or its parameter budget, not both")

    @property
    def label(self) -> str:
        if self.kind == "moonshine":
            return f"{self.name} {self.block}"
        if self.kind == "pretrained":
            return f"{self.name} (torchvision weights)"
        if self.substitute is None:
            return self.name
        tuning = f"@{self.budget / 1e6:g}M params" if self.budget else f":{self.setting:g}"
        return f"{self.name} {self.substitute}{tuning}{' +linear' if self.linear else ''}"


Method = Literal["scratch", "kd", "at", "eval"]
TASKS = {"cifar10": "classification", "cifar100": "classification", "imagenet": "classification"}
TASKS["cityscapes"] = "segmentation"
TRAIN_IMAGES = {"cifar10": 50_000, "cifar100": 50_000, "imagenet": 1_281_167, "cityscapes": 2_975}
MULT_ADDS_PER_GPU_SECOND = 1.0e13
"""Planning throughput: 10¹³ multiply-adds per second of training arithmetic on one V100/A100-class GPU
with mixed precision (ResNet-50 trains at roughly 1,200 images/s on a V100: 3 × 4.1G × 1,200 ≈ 1.5e13).
Separable, grouped and substituted convolutions run far below this peak, so estimates for them are
optimistic (their ``efficiency`` < 1 says by how much we guess)."""


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One job: a network trained (or evaluated) on one data set with one method, as in the thesis.

    ``settings`` holds every paper-profile value with its provenance (keys: ``epochs``,
    ``batch_size``, ``optimizer``, ``lr``, ``momentum``, ``weight_decay``, ``schedule``,
    ``milestones``, ``gamma``, ``augmentation``, ``cutout``, ``beta``, ``alpha``, ``crs``, ...).
    ``reference`` is ``(table, row, column)`` of the thesis' number in ``data/reference``;
    ``metric`` the name this job records it under. ``mult_adds`` (student, teacher) per training
    image and ``efficiency`` feed :func:`gpu_hours`; ``blocked`` says why the job cannot run yet.
    """

    name: str
    chapter: str
    location: str
    dataset: str
    model: ModelRef
    method: Method
    settings: Mapping[str, Setting]
    metric: str
    reference: tuple[str, str, str] | None = None
    teacher: str | None = None
    mult_adds: tuple[float, float] = (0.0, 0.0)
    efficiency: float = 1.0
    blocked: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        if self.dataset not in TASKS:
            raise ValueError(f"unknown data set {self.dataset!r}; valid: {', '.join(TASKS)}")
        if self.method not in ("scratch", "kd", "at", "eval"):
            raise ValueError(f"unknown method {self.method!r}; valid: scratch, kd, at, eval")
        if self.method in ("kd", "at") and not self.teacher:
            raise ValueError(f"{self.name}: method {self.method!r} needs a teacher")
        if "epochs" not in self.settings:
            raise ValueError(f"{self.name}: settings need 'epochs'")

    @property
    def task(self) -> str:
        return TASKS[self.dataset]

    def value(self, key: str, default: Any = None) -> Any:
        """The plain value of setting ``key`` (``default`` if the experiment has none)."""
        setting = self.settings.get(key)
        return default if setting is None else setting.value

    @property
    def epochs(self) -> int:
        stages = self.value("stages")
        return int(self.value("epochs")) * (len(stages) if stages else 1)

    @property
    def recipe_label(self) -> str:
        if self.method == "eval":
            return "evaluate published weights"
        optimizer = self.value("optimizer", "sgd")
        schedule = self.value("schedule", "")
        return (
            f"{optimizer} lr {self.value('lr')} {schedule}, batch {self.value('batch_size')}, "
            f"wd {self.value('weight_decay')}"
        )

    @property
    def gpu_hours(self) -> float:
        return gpu_hours(self)

    def provenance(self) -> list[dict[str, Any]]:
        """One row per setting: key, value, source (thesis/delegated/chosen), where or why."""
        return [
            {"setting": key, "value": s.value, "source": s.source, "where": s.where}
            for key, s in self.settings.items()
        ]


def gpu_hours(experiment: Experiment) -> float:
    """Planning estimate of one run on one GPU: arithmetic only (see :data:`MULT_ADDS_PER_GPU_SECOND`).

    ``epochs × training images × (3 × student + teacher) mult-adds / (rate × efficiency)`` (backward
    ≈ 2× forward; the teacher only runs forward, for KD/AT); an evaluation job counts one forward pass
    over the 50,000 validation images. Data loading is not counted (ImageNet on a slow disk is slower).
    """
    student, teacher = experiment.mult_adds
    rate = MULT_ADDS_PER_GPU_SECOND * experiment.efficiency
    if experiment.method == "eval":
        return 50_000 * student / rate / 3600
    per_image = 3 * student + (teacher if experiment.method in ("kd", "at") else 0.0)
    return experiment.epochs * TRAIN_IMAGES[experiment.dataset] * per_image / rate / 3600


def slug(text: str) -> str:
    """A block / substitute label as a name part: ``G(N/4)`` -> ``gn4``, ``BG(2,M/8)`` -> ``bg2-m8``."""
    text = text.lower().replace("/", "").replace(",", "-")
    return re.sub(r"[^a-z0-9.-]+", "", text)


# ----------------------------------------------------------------------------------------------------------
# The protocols (shared settings with their provenance)


def _zagoruyko_cifar(epochs_where: str = "§4.4.1") -> dict[str, Setting]:
    where = "§4.4.1 (Zagoruyko and Komodakis' CIFAR protocol)"
    return {
        "epochs": thesis(200, epochs_where),
        "batch_size": thesis(128, where),
        "optimizer": thesis("sgd", where),
        "lr": thesis(0.1, where),
        "momentum": thesis(0.9, where),
        "weight_decay": thesis(5e-4, where),
        "schedule": thesis("step", where),
        "milestones": thesis((60, 120, 160), where),
        "gamma": thesis(0.2, where),
        "augmentation": thesis("pad 4 + random crop, left-right flip", where),
    }


def _cifar_ch4() -> dict[str, Setting]:
    settings = _zagoruyko_cifar()
    settings["alpha"] = thesis(0.9, "§4.4.1, Eq. 4.1 (KD α)")
    settings["temperature"] = thesis(4.0, "§4.4.1, Eq. 4.1 (KD T)")
    settings["beta"] = thesis(1000.0, "§4.4.1, Eq. 4.2 (AT β)")
    settings["kd_form"] = chosen(
        "kl_div_mean",
        "the thesis prints Eq. 4.1 summed over classes; the code behind Table 4.3 averaged F.kl_div over "
        "classes too (10x smaller weight on CIFAR-10), see thesislib.moonshine.distillation",
    )
    return settings


def _imagenet_ch4() -> dict[str, Setting]:
    where = "§4.5.1 (Zagoruyko and Komodakis' ImageNet protocol)"
    return {
        "epochs": thesis(100, where),
        "batch_size": thesis(256, where + "; 'across 4 GPUs'"),
        "optimizer": thesis("sgd", where),
        "lr": thesis(0.1, where),
        "momentum": thesis(0.9, where),
        "weight_decay": thesis(1e-4, where),
        "schedule": thesis("step", where),
        "milestones": thesis((30, 60, 90), where + ": 'reduced by a factor of 10 every 30 epochs'"),
        "gamma": thesis(0.1, where),
        "beta": thesis(750.0, "§4.5.1: β = 750 over the four ResNet groups"),
        "augmentation": chosen(
            "RandomResizedCrop 224 + flip; val: resize 256, centre crop 224",
            "the thesis does not describe its ImageNet augmentation; this is the standard PyTorch "
            "ImageNet recipe that Zagoruyko and Komodakis' ImageNet code also used",
        ),
    }


def _wrn28_ch5() -> dict[str, Setting]:
    where = "§5.3.1 (Wide ResNet)"
    return {
        "epochs": thesis(200, where),
        "batch_size": thesis(128, where),
        "optimizer": thesis("sgd", where),
        "lr": thesis(0.1, where),
        "momentum": thesis(0.9, where),
        "weight_decay": thesis(5e-4, where + "; CRS-scaled (§5.2.5) except in the §5.3.5 ablation"),
        "schedule": thesis("step", where),
        "milestones": thesis((60, 120, 160), where),
        "gamma": thesis(0.2, where),
        "augmentation": thesis("random crop, left-right flip, Cutout", where),
        "cutout": chosen(
            16,
            "the thesis names Cutout without its size; 16 px is DeVries and Taylor's CIFAR-10 setting "
            "and the thesis code's Cutout(16)",
        ),
        "beta": thesis(1000.0, "§5.3.1: 'α was set to 0 and β was set to 1000'"),
        "alpha": thesis(0.0, "§5.3.1"),
        "crs_scope": chosen(
            "network", "the thesis code's network-wide compression ratio (review of ch. 4-5 protocols)"
        ),
    }


def _darts_ch5() -> dict[str, Setting]:
    where = "§5.3.1 (DARTS)"
    liu = "§5.3.1 'replicated precisely the training hyperparameters ... of the original paper': Liu et al. (2019)"
    return {
        "epochs": thesis(600, where),
        "batch_size": thesis(96, where),
        "optimizer": thesis("sgd", where),
        "lr": thesis(0.025, where),
        "momentum": thesis(0.9, where),
        "weight_decay": thesis(3e-4, where + "; CRS-scaled (§5.2.5)"),
        "schedule": thesis("cosine", where + ": cosine annealed to 0"),
        "augmentation": thesis("random crop, left-right flip, Cutout", where),
        "cutout": delegated(16, liu + ": cutout length 16"),
        "auxiliary_weight": delegated(0.4, liu + ": auxiliary weight 0.4"),
        "drop_path": thesis(0.2, where + ": linear increase of the drop probability from 0 to 0.2"),
        "grad_clip": delegated(5.0, liu + ": gradient clipping at norm 5"),
        "beta": chosen(1000.0, "§5.3.1 states β = 1000 for the WRN experiments; the same for DARTS"),
        "alpha": thesis(0.0, "§5.3.1"),
        "crs_scope": chosen("network", "the thesis code's network-wide compression ratio"),
    }


def _wrn50_ch5() -> dict[str, Setting]:
    where = "§5.3.1 (ImageNet)"
    return {
        "epochs": thesis(90, where),
        "batch_size": thesis(256, where),
        "optimizer": thesis("sgd", where),
        "lr": thesis(0.1, where),
        "momentum": thesis(0.9, where),
        "weight_decay": thesis(1e-4, where + "; CRS-scaled (§5.2.5)"),
        "schedule": thesis("step", where),
        "milestones": thesis((30, 60), where),
        "gamma": thesis(0.1, where),
        "augmentation": thesis("random crops, left-right flips", where),
        "beta": chosen(
            750.0, "chapter 5 does not print β for ImageNet; 1000·3/4 as §4.5.1 scales it for 4 groups"
        ),
        "alpha": thesis(0.0, "§5.3.1"),
        "crs_scope": chosen("network", "the thesis code's network-wide compression ratio"),
    }


def _erfnet_ch4() -> dict[str, Setting]:
    romera = (
        "§4.5.2 'the same optimiser, schedule, and image scaling and augmentation as in the ERFNet paper': "
        "Romera et al. (2017b) and their released training code"
    )
    return {
        "stages": delegated(
            ("encoder", "decoder"), romera + ": the encoder is trained first, then the whole network"
        ),
        "epochs": delegated(150, romera + ": 150 epochs per stage"),
        "batch_size": delegated(6, romera + " (their code's default batch size)"),
        "optimizer": delegated("adam", romera + ": Adam, betas (0.9, 0.999), eps 1e-8"),
        "lr": delegated(5e-4, romera),
        "weight_decay": delegated(1e-4, romera + " (their code; the paper's text says 2e-4)"),
        "schedule": delegated("poly", romera + ": lr × (1 − epoch/epochs)^0.9 per epoch"),
        "image_size": delegated((512, 1024), romera + ": images and labels resized to 1024×512"),
        "augmentation": delegated("left-right flip, random translation 0-2 px", romera),
        "class_weights": chosen(
            "none (void ignored)",
            "the ERFNet code weights the 19 classes with fixed values the thesis does not print; the void "
            "class is ignored here as their zero weight ignores it",
        ),
        "beta": thesis(1000.0, "§4.5.2: layers 7, 12, 16 with β = 1000 for encoder training"),
        "beta_decoder": thesis(600.0, "§4.5.2: layers 19 and 22 added and β = 600 for decoder training"),
    }


def _secl() -> dict[str, Setting]:
    settings = _zagoruyko_cifar(
        "SECL (seed 004) does not print its schedule: chosen here, the Zagoruyko-Komodakis CIFAR protocol "
        "that Table 4.3 used for the same WRN-40-2"
    )
    for key in ("epochs", "batch_size", "lr", "momentum", "schedule", "milestones", "gamma", "augmentation"):
        s = settings[key]
        settings[key] = chosen(
            s.value, "SECL does not print its schedule; Table 4.3's WRN-40-2 protocol (§4.4.1)"
        )
    settings["weight_decay"] = thesis(8.8e-6, "SECL §4: 'prompting us to use 8.8×10⁻⁶ in all experiments'")
    settings["beta"] = thesis(
        1000.0, "SECL §4.1: AT 'with the method described in Crowley et al. (2018)', β = 1000"
    )
    settings["acdc_layers"] = chosen(
        1,
        "SECL §4.1 says 12 ACDC layers per conv, but Table 1's 46.4K parameters are reproduced with 1 "
        "(thesislib count; 12 layers give more): the counted network is trained",
    )
    settings["crs"] = chosen(False, "SECL predates CRS weight decay (chapter 5)")
    return settings


# ----------------------------------------------------------------------------------------------------------
# The registry

_CH4_STUDENT_MADDS: dict[str, float] = {}


def _table(name: str):  # lazy: the reference CSVs are read once, when the registry is built
    from thesislib import reference

    return reference.table(name)


def _chapter4(experiments: list[Experiment]) -> None:
    table = _table("ch4_table43")
    for dataset, short, classes in (("cifar10", "c10", 10), ("cifar100", "c100", 100)):
        teacher_name = f"t43-{short}-wrn-40-2-s-scratch"
        teacher_madds = float(table.loc["wrn-40-2 S", "madds_m"]) * 1e6
        for row_name, row in table.iterrows():
            methods = ["scratch"] if row["role"] == "teacher" else ["scratch", "kd", "at"]
            for method in methods:
                settings = _cifar_ch4()
                ref_column = f"{short}_{method}"
                experiments.append(
                    Experiment(
                        name=f"t43-{short}-{row['model']}-{slug(row['block'])}-{method}",
                        chapter="4",
                        location=f"Table 4.3 ({'CIFAR-10' if classes == 10 else 'CIFAR-100'})",
                        dataset=dataset,
                        model=ModelRef("moonshine", row["model"], row["block"]),
                        method=method,  # type: ignore[arg-type]
                        settings=settings,
                        metric="test_error",
                        reference=("ch4_table43", str(row_name), ref_column),
                        teacher=None if method == "scratch" else teacher_name,
                        mult_adds=(float(row["madds_m"]) * 1e6, teacher_madds),
                        efficiency=1.0 if row["block"] in ("S", "S-2x2") else 0.3,
                    )
                )

    table = _table("ch4_table44")
    teacher_madds = float(table.loc["resnet34 S", "madds_g"]) * 1e9
    for pretrained in ("resnet34", "resnet18"):
        row = table.loc[f"{pretrained} S"]
        experiments.append(
            Experiment(
                name=f"t44-{pretrained}-pretrained-eval",
                chapter="4",
                location="Table 4.4 (scratch column: 'obtained from pre-trained PyTorch models'), Fig. 4.7",
                dataset="imagenet",
                model=ModelRef("pretrained", pretrained),
                method="eval",
                settings={
                    "epochs": thesis(
                        0, "Table 4.4 caption: Res34 and Res18 scratch results from pre-trained models"
                    ),
                    "augmentation": chosen(
                        "val: resize 256, centre crop 224", "torchvision's evaluation transform"
                    ),
                },
                metric="top1_error",
                reference=("ch4_table44", f"{pretrained} S", "scratch_top1"),
                mult_adds=(float(row["madds_g"]) * 1e9, 0.0),
            )
        )
    for row_name, row in table.iterrows():
        if row["role"] == "teacher":
            continue
        methods = ["at"] if row_name == "resnet18 S" else ["scratch", "at"]
        for method in methods:
            experiments.append(
                Experiment(
                    name=f"t44-{row['model']}-{slug(row['block'])}-{method}",
                    chapter="4",
                    location="Table 4.4, Fig. 4.7",
                    dataset="imagenet",
                    model=ModelRef("moonshine", row["model"], row["block"]),
                    method=method,  # type: ignore[arg-type]
                    settings=_imagenet_ch4(),
                    metric="top1_error",
                    reference=("ch4_table44", str(row_name), f"{method}_top1"),
                    teacher="t44-resnet34-pretrained-eval" if method == "at" else None,
                    mult_adds=(float(row["madds_g"]) * 1e9, teacher_madds),
                    efficiency=1.0 if row["block"] == "S" else 0.3,
                )
            )

    table = _table("ch4_table45")
    scale = 1024 * 512 / 65_536  # Table 4.5 counts at 65,536 pixels; training runs at 1024×512
    teacher_madds = float(table.loc["erfnet S", "madds_g"]) * 1e9 * scale
    for row_name, block, method, column in (
        ("erfnet S", "S", "scratch", "scratch_iou"),
        ("erfnet G(N)", "G(N)", "scratch", "scratch_iou"),
        ("erfnet G(N)", "G(N)", "at", "at_iou"),
    ):
        experiments.append(
            Experiment(
                name=f"t45-erfnet-{slug(block)}-{method}",
                chapter="4",
                location="Table 4.5",
                dataset="cityscapes",
                model=ModelRef("moonshine", "erfnet", block),
                method=method,  # type: ignore[arg-type]
                settings=_erfnet_ch4(),
                metric="mean_iou",
                reference=("ch4_table45", row_name, column),
                teacher="t45-erfnet-s-scratch" if method == "at" else None,
                mult_adds=(float(table.loc[row_name, "madds_g"]) * 1e9 * scale, teacher_madds),
                efficiency=1.0 if block == "S" else 0.3,
            )
        )


_METHODS5 = ("rf", "acdc", "hashed", "tt", "tucker", "shufflenet")
_WRN28_BUDGETS = {"b1": 2.38e6, "b2": 1.2e6, "b3": 0.6e6}
_DARTS_BUDGETS = {"b1": 1.42e6, "b2": 0.83e6, "b3": 0.49e6}
#: mult-adds per image (``thesislib count``): dense networks and their separable conv1x1 versions
#: (the substituted students cost at most the latter in the thesis' counting, §5.3.4).
_MADDS5 = {
    "wrn-28-10": 5.246e9,
    "wrn-28-10-separable": 0.627e9,
    "darts": 0.537e9,
    "wrn-50-2": 11.413e9,
    "wrn-50-2-separable": 4.861e9,
    "wrn-40-2": 0.328e9,
    "wrn-40-2-separable": 0.044e9,
}


def _chapter5(experiments: list[Experiment]) -> None:
    budget_where = "§5.2.4 parameter budgets (data/reference/ch5_budgets.csv)"
    experiments.append(
        Experiment(
            name="c5-wrn-28-10-scratch",
            chapter="5",
            location="§5.3.3 teacher and base network (3.2% error, 36.5M parameters), Figs. 5.7, 5.16",
            dataset="cifar10",
            model=ModelRef("compressed", "wrn-28-10"),
            method="scratch",
            settings={**_wrn28_ch5(), "crs": thesis(False, "a dense network has no compressed layers")},
            metric="test_error",
            reference=("ch5_budgets", "wrn28_10_dense_top1_error", "value"),
            mult_adds=(_MADDS5["wrn-28-10"], 0.0),
        )
    )
    arms = [("at", True, "Figs. 5.7 (AT), 5.11, 5.13, 5.14, 5.15, 5.16 (AT + CRS)")]
    arms.append(("at", False, "Figs. 5.13, 5.14, 5.15 (AT without CRS, §5.3.5)"))
    arms.append(("scratch", True, "Figs. 5.7 (no AT), 5.14, 5.16 (CRS without AT, §5.3.6)"))
    for method in _METHODS5:
        for budget, target in _WRN28_BUDGETS.items():
            method_arms = list(arms)
            if method == "hashed":
                method_arms.append(("scratch", False, "Fig. 5.14 (HashedNet without AT and without CRS)"))
            for distillation, crs, where in method_arms:
                settings = dict(_wrn28_ch5())
                settings["budget"] = thesis(target, budget_where)
                settings["crs"] = thesis(crs, "§5.2.5 / §5.3.5" if crs else "§5.3.5 ablation")
                arm = f"{distillation}-{'crs' if crs else 'nocrs'}"
                experiments.append(
                    Experiment(
                        name=f"c5-wrn-28-10-{method}-{budget}-{arm}",
                        chapter="5",
                        location=where,
                        dataset="cifar10",
                        model=ModelRef("compressed", "wrn-28-10", substitute=method, budget=target),
                        method=distillation,  # type: ignore[arg-type]
                        settings=settings,
                        metric="test_error",
                        teacher="c5-wrn-28-10-scratch" if distillation == "at" else None,
                        mult_adds=(_MADDS5["wrn-28-10-separable"], _MADDS5["wrn-28-10"]),
                        efficiency=0.3,
                    )
                )
    experiments.append(
        Experiment(
            name="c5-darts-scratch",
            chapter="5",
            location="§5.3.3 DARTS base network (2.83% error), Figs. 5.8, 5.12",
            dataset="cifar10",
            model=ModelRef("compressed", "darts"),
            method="scratch",
            settings={**_darts_ch5(), "crs": thesis(False, "a dense network has no compressed layers")},
            metric="test_error",
            reference=("ch5_budgets", "darts_dense_top1_error", "value"),
            mult_adds=(_MADDS5["darts"], 0.0),
            efficiency=0.3,
        )
    )
    for method in _METHODS5:
        for budget, target in _DARTS_BUDGETS.items():
            settings = dict(_darts_ch5())
            settings["budget"] = thesis(target, budget_where)
            settings["crs"] = thesis(True, "§5.3.1 DARTS: 'scaled in all experiments'")
            experiments.append(
                Experiment(
                    name=f"c5-darts-{method}-{budget}-at-crs",
                    chapter="5",
                    location="Figs. 5.8, 5.12",
                    dataset="cifar10",
                    model=ModelRef("compressed", "darts", substitute=method, budget=target),
                    method="at",
                    settings=settings,
                    metric="test_error",
                    teacher="c5-darts-scratch",
                    mult_adds=(_MADDS5["darts"], _MADDS5["darts"]),
                    efficiency=0.3,
                )
            )
    experiments.append(
        Experiment(
            name="c5-wrn-50-2-pretrained-eval",
            chapter="5",
            location="§5.3.1 (model-zoo WRN-50-2: 22.5% top-1 as evaluated), Table 5.1, Fig. 5.9",
            dataset="imagenet",
            model=ModelRef("pretrained", "wide_resnet50_2"),
            method="eval",
            settings={
                "epochs": thesis(0, "§5.3.1: the public model-zoo weights, evaluated"),
                "augmentation": chosen(
                    "val: resize 256, centre crop 224", "torchvision's evaluation transform"
                ),
            },
            metric="top1_error",
            reference=("ch5_table51", "wrn50_2_modelzoo_top1_error", "value"),
            mult_adds=(_MADDS5["wrn-50-2"], 0.0),
        )
    )
    rows = [(m, b) for m in ("shufflenet", "rf", "hashed", "tt") for b in ("low", "high")]
    rows += [("shufflenet", "low-linear"), ("hashed", "low-linear")]
    for method, budget in rows:
        linear = budget.endswith("linear")
        level = budget.split("-")[0]
        target = 4.35e6 if level == "low" else 17.7e6
        key = f"wrn50_2_{method}{'_linear' if linear else ''}_{level}_top1_error"
        settings = dict(_wrn50_ch5())
        settings["budget"] = thesis(target, budget_where)
        settings["crs"] = thesis(
            True, "§5.3.1 ImageNet: 'scaled according to the method described in Section 5.2.5'"
        )
        experiments.append(
            Experiment(
                name=f"c5-wrn-50-2-{method}-{budget}-at-crs",
                chapter="5",
                location="Table 5.1, Fig. 5.9",
                dataset="imagenet",
                model=ModelRef("compressed", "wrn-50-2", substitute=method, budget=target, linear=linear),
                method="at",
                settings=settings,
                metric="top1_error",
                reference=("ch5_table51", key, "value"),
                teacher="c5-wrn-50-2-pretrained-eval",
                mult_adds=(_MADDS5["wrn-50-2-separable"], _MADDS5["wrn-50-2"]),
                efficiency=0.3,
            )
        )
    fast = "§5.3.1: cifar10-fast, 128 epochs, cosine from 0.2, Nesterov 0.9, batch 512, wd 5e-4, Cutout"
    for method in ("tt", "tucker"):
        experiments.append(
            Experiment(
                name=f"c5-fig56-{method}-grid",
                chapter="5",
                location="Fig. 5.6 (grid over tensor dimensions and rank scale)",
                dataset="cifar10",
                model=ModelRef("compressed", "wrn-28-10", substitute=method, setting=0.5),
                method="scratch",
                settings={
                    "epochs": thesis(128, fast),
                    "batch_size": thesis(512, fast),
                    "lr": thesis(0.2, fast),
                },
                metric="test_error",
                mult_adds=(_MADDS5["wrn-28-10-separable"], 0.0),
                blocked=(
                    "needs a tensor-dimension option on the TT/Tucker substitutes (the library fixes 3 "
                    "dimensions, §5.3.2's choice) and the thesis' 'ResNet-18-like' cifar10-fast network"
                ),
            )
        )


def _secl_jobs(experiments: list[Experiment]) -> None:
    reference_row = {
        "scratch": "secl_wrn40_2_secl_top1_error_scratch",
        "at": "secl_wrn40_2_secl_top1_error_distilled",
    }
    for method in ("scratch", "at"):
        experiments.append(
            Experiment(
                name=f"secl-wrn-40-2-acdc-{method}",
                chapter="secl",
                location=f"SECL Table 1 (WRN-SECL(40,2), {'Scratch' if method == 'scratch' else 'Distilled'})",
                dataset="cifar10",
                model=ModelRef("compressed", "wrn-40-2", substitute="acdc", setting=1.0),
                method=method,  # type: ignore[arg-type]
                settings=_secl(),
                metric="test_error",
                reference=("ch5_budgets", reference_row[method], "value"),
                teacher="t43-c10-wrn-40-2-s-scratch" if method == "at" else None,
                mult_adds=(_MADDS5["wrn-40-2-separable"], _MADDS5["wrn-40-2"]),
                efficiency=0.2,
            )
        )
    lr_row = {
        "scratch": "secl_wrn40_2_secl_lr_top1_error_scratch",
        "at": "secl_wrn40_2_secl_lr_top1_error_distilled",
    }
    for method in ("scratch", "at"):
        experiments.append(
            Experiment(
                name=f"secl-lr-wrn-40-2-acdc-{method}",
                chapter="secl",
                location="SECL Table 1 (WRN-SECL-LR(40,2): ACDC-parameterised grouped 3×3 convs)",
                dataset="cifar10",
                model=ModelRef("compressed", "wrn-40-2", substitute="acdc", setting=1.0),
                method=method,  # type: ignore[arg-type]
                settings=_secl(),
                metric="test_error",
                reference=("ch5_budgets", lr_row[method], "value"),
                teacher="t43-c10-wrn-40-2-s-scratch" if method == "at" else None,
                mult_adds=(_MADDS5["wrn-40-2-separable"], _MADDS5["wrn-40-2"]),
                efficiency=0.2,
                blocked="the ACDC-parameterised grouped 3×3 convolution of SECL-LR is not implemented in "
                "thesislib.compressed",
            )
        )


def _build() -> dict[str, Experiment]:
    experiments: list[Experiment] = []
    _chapter4(experiments)
    _chapter5(experiments)
    _secl_jobs(experiments)
    registry: dict[str, Experiment] = {}
    for experiment in experiments:
        if experiment.name in registry:
            raise AssertionError(f"two experiments are named {experiment.name}")
        registry[experiment.name] = experiment
    for experiment in experiments:
        if experiment.teacher is not None and experiment.teacher not in registry:
            raise AssertionError(f"{experiment.name}: unknown teacher {experiment.teacher}")
    return registry


class _Registry(Mapping[str, Experiment]):
    """The experiments by name, built on first use (it reads the reference tables)."""

    _items: dict[str, Experiment] | None = None

    def _all(self) -> dict[str, Experiment]:
        if self._items is None:
            type(self)._items = _build()
        assert self._items is not None
        return self._items

    def __getitem__(self, name: str) -> Experiment:
        return self._all()[name]

    def __iter__(self):
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


EXPERIMENTS: Mapping[str, Experiment] = _Registry()
"""Every experiment of chapters 4, 5 and SECL, by name."""


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; ``ValueError`` with close matches otherwise."""
    try:
        return EXPERIMENTS[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, list(EXPERIMENTS), n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `thesislib experiments` lists them"
        raise ValueError(f"unknown experiment {name!r}{hint}") from None


def blocked_experiments() -> list[Experiment]:
    """The experiments that cannot run yet, each with its reason."""
    return [e for e in EXPERIMENTS.values() if e.blocked]
