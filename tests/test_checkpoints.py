"""Checkpoint files that cannot be used name the file and say what to do (issue 13, defect 7).

Each test injects one fault into a checkpoint a :class:`~thesislib.training.Trainer` resumes from:
truncated, empty, a foreign file, a plain ``state_dict``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from thesislib.training import TensorBatches, TrainConfig, Trainer, load_checkpoint


def _trainer(checkpoint: Path, epochs: int = 1) -> Trainer:
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 4, generator=generator), torch.randint(0, 2, (32,), generator=generator)
    model = nn.Linear(4, 2)
    return Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        TensorBatches(x, y, batch_size=8, seed=0),
        lambda m, batch: nn.functional.cross_entropy(m(batch[0]), batch[1]),
        TrainConfig(epochs=epochs, seed=0, checkpoint=checkpoint, progress=False, device="cpu"),
    )


@pytest.fixture
def good_checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "run.pt"
    _trainer(path).fit()
    assert set(load_checkpoint(path)) >= {"run_id", "model", "epoch"}
    return path


def test_truncated_checkpoint_names_the_file(good_checkpoint: Path) -> None:
    data = good_checkpoint.read_bytes()
    good_checkpoint.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        ValueError, match=rf"checkpoint {good_checkpoint} cannot be read .*truncated.*delete it"
    ):
        _trainer(good_checkpoint).fit()


def test_empty_checkpoint_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=rf"checkpoint {path} is empty"):
        _trainer(path).fit()


def test_foreign_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.pt"
    path.write_text("these are not weights")
    with pytest.raises(ValueError, match=rf"checkpoint {path} cannot be read"):
        _trainer(path).fit()


def test_plain_state_dict_names_the_file_and_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save(nn.Linear(4, 2).state_dict(), path)
    with pytest.raises(ValueError, match=rf"checkpoint {path} lacks run_id, identity, .*plain state_dict"):
        _trainer(path).fit()
    torch.save([1, 2, 3], path)
    with pytest.raises(ValueError, match=rf"checkpoint {path} holds a list"):
        _trainer(path).fit()


def test_a_good_checkpoint_still_loads(good_checkpoint: Path) -> None:
    history = _trainer(good_checkpoint).fit()  # finished: loaded, not trained again
    assert len(history) == 1
