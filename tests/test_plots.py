"""Figures: `seld plot` on a known clip (the drawn points are the CSV rows), learning curves from
TensorBoard events and from a checkpoint history."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seld import plots
from seld.cli import main
from seld.data.metadata import Event, write_metadata_csv
from seld.errors import DataError

PNG = b"\x89PNG\r\n\x1a\n"
CLIP = "fold4_room1_mix001"


@pytest.fixture()
def clip_dirs(tmp_path: Path) -> tuple[Path, Path]:
    ref = [Event(f, 2, 0, 40, 150) for f in range(10, 30)] + [Event(f, 8, 0, -60, 300) for f in range(20, 45)]
    pred = [Event(f, 2, 0, 35, 170) for f in range(12, 30)] + [Event(f, 11, 0, 10, 90) for f in range(0, 5)]
    write_metadata_csv(tmp_path / "ref" / "dev-test-synth" / f"{CLIP}.csv", ref)  # found in a subfolder
    write_metadata_csv(tmp_path / "pred" / f"{CLIP}.csv", pred)
    return tmp_path / "pred", tmp_path / "ref"


def test_seld_plot_draws_the_clip_rows(clip_dirs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    pred, ref = clip_dirs
    figures = []
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, out: (figures.append(fig), save(fig, out))[1])
    out = tmp_path / "fig" / "clip.png"
    assert main(["plot", "--pred", str(pred), "--ref", str(ref), "--clip", CLIP, "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert out.read_bytes()[:8] == PNG and out.stat().st_size > 20_000
    act, az, dist = figures[0].axes[:3]
    assert [t.get_text() for t in act.get_yticklabels()] == ["clapping", "music", "bell"]
    points = np.concatenate([c.get_offsets() for c in az.collections])
    assert len(points) == 20 + 25 + 18 + 5  # every reference and predicted row
    assert {tuple(p) for p in points} >= {(10.0, 40.0), (44.0, -60.0), (12.0, 35.0), (0.0, 10.0)}
    d = np.concatenate([c.get_offsets() for c in dist.collections])
    assert {tuple(p) for p in d} >= {(10.0, 1.5), (20.0, 3.0), (12.0, 1.7), (4.0, 0.9)}  # metres


def test_seld_plot_errors_name_the_problem(clip_dirs, tmp_path: Path, capsys) -> None:
    pred, ref = clip_dirs
    assert main(["plot", "--pred", str(pred), "--ref", str(ref), "--clip", "nope", "--out", str(tmp_path / "x.png")]) == 1
    assert "no file nope.csv" in capsys.readouterr().err
    assert main(["plot", "--pred", str(pred), "--out", str(tmp_path / "x.png")]) == 1
    assert "--clip" in capsys.readouterr().err
    with pytest.raises(DataError, match="not a folder"):
        plots.find_csv(tmp_path / "missing", CLIP)


def test_learning_curves_from_tensorboard_and_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torch.utils.tensorboard import SummaryWriter

    run_a = tmp_path / "a"
    writer = SummaryWriter(str(run_a / "tensorboard"))
    for epoch, (f, doae) in enumerate([(0.1, 30.0), (0.2, 25.0), (0.25, 20.0)], start=1):
        writer.add_scalar("train/loss", 1.0 / epoch, epoch * 10)
        writer.add_scalar("val/F", f, epoch)
        writer.add_scalar("val/DOAE", doae, epoch)
        writer.add_scalar("val/RDE", 0.5, epoch)
    writer.close()
    hist = plots.read_run_history(run_a)
    assert [h["epoch"] for h in hist] == [1.0, 2.0, 3.0]
    assert [round(h["F"], 6) for h in hist] == [0.1, 0.2, 0.25] and hist[2]["DOAE"] == 20.0
    assert all(0.0 <= h["minutes"] < 5.0 for h in hist)

    import torch

    run_b = tmp_path / "b"
    (run_b / "checkpoints").mkdir(parents=True)
    history = [{"epoch": 0.0, "val_F": 0.05, "val_DOAE": 40.0, "val_RDE": 0.9}, {"epoch": 1.0, "val_F": 0.15}]
    torch.save({"model": {}, "history": history}, run_b / "checkpoints" / "last.pt")
    hist_b = plots.read_run_history(run_b)
    assert hist_b == [{"epoch": 1.0, "F": 0.05, "DOAE": 40.0, "RDE": 0.9}, {"epoch": 2.0, "F": 0.15}]

    out = plots.plot_learning_curves({"a": run_a, "b": run_b}, tmp_path / "curves.png")
    assert out.read_bytes()[:8] == PNG
    # a fine-tuning drawn after its pre-training: the F-per-minute panel shifts it by start_minutes
    figs = []
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: figs.append(fig) or save(fig, path))
    plots.plot_learning_curves({"a": run_a}, tmp_path / "shifted.png", {"a": 10.0})
    xs = figs[0].axes[3].lines[0].get_xdata()
    assert len(xs) == 3 and all(10.0 <= x < 15.0 for x in xs)
    assert main(["plot", "--runs", str(run_a), str(run_b), "--out", str(tmp_path / "c2.png")]) == 0
    with pytest.raises(DataError, match="no TensorBoard events"):
        plots.read_run_history(tmp_path / "empty")
