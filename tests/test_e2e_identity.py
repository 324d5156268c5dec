"""The refactor's guard: a tiny end-to-end run of the ``seld`` commands (``scripts/ci/e2e_identity.py``)
computes bit-identical features, checkpoints, scores, predictions and embeddings to the run recorded
in ``tests/data/e2e_reference.json`` on the commit before the refactor.

On another machine or stack (the reference's fingerprint differs) the stored hashes are not
expected to match: the reference commit's ``seld`` is exported from git history and run here, and
the two runs are compared. Where the history lacks that commit (a shallow clone), the test is
skipped with the mismatch in its reason: it never passes without a comparison.
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from tests.scripts import ROOT, load_script

REFERENCE = ROOT / "tests" / "data" / "e2e_reference.json"


@pytest.fixture(scope="module")
def ident():
    return load_script("scripts/ci/e2e_identity.py", "e2e_identity")


@pytest.mark.slow  # one run of the chain (two where the stored hashes do not apply); in `make test`
def test_tiny_run_is_bit_identical_to_the_reference_commit(ident, tmp_path: Path) -> None:
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    commit = reference["commit"]
    assert commit and not reference["dirty"], f"{REFERENCE} must come from a clean commit, got {commit} dirty={reference['dirty']}"
    expected, source = reference["hashes"], f"{REFERENCE.name} (commit {commit[:10]})"
    stale = ident.stale_reasons(reference)
    if stale:  # another CPU, stack or script version: rerun the reference commit here
        if ident.resolve_commit(ROOT, commit) is None:
            pytest.skip(f"the stored hashes do not apply here ({'; '.join(stale)}) and commit {commit} is not in "
                        "this clone's history to rerun it (fetch it, or unshallow the clone)")
        expected = ident.run_at(commit, tmp_path / "reference_run")["hashes"]
        source = f"a run of commit {commit[:10]} here (the stored hashes do not apply: {'; '.join(stale)})"
    current = ident.run_e2e(tmp_path / "run", ROOT)
    assert len(expected) > 100, f"{source} holds only {len(expected)} artefacts"
    assert sum(current["csv_rows"].values()) > 0, f"the predictions hold no event: {current['csv_rows']}"
    diffs = ident.compare(expected, current["hashes"])
    assert not diffs, f"{len(diffs)} artefact(s) differ from {source}:\n" + "\n".join(diffs[:40])


def test_reference_covers_every_stage(ident) -> None:
    """The stored hashes name each artefact kind of the chain, so a run that skipped one cannot match."""
    hashes = json.loads(REFERENCE.read_text(encoding="utf-8"))["hashes"]
    for prefix in ("synth:data/stereo_dev/", "h5:features/clips/", "h5:features/dev-train-synth.h5:features",
                   "json:features/normalization.json", "json:runs/pretrain/test_scores.json",
                   "ckpt:runs/pretrain/checkpoints/last.pt:ema[", "ckpt:runs/finetune_grep/checkpoints/best_f.pt:model[",
                   "ckpt:runs/finetune_trep/checkpoints/last.pt:optimizer[state]",
                   "ckpt:runs/baseline/checkpoints/last.pt:model[", "file:predictions/finetune_grep/long.csv",
                   "file:predictions/finetune_grep/long.captions.jsonl", "file:predictions/pretrain/",
                   "h5:embeddings/finetune_trep.h5:outputs/"):
        assert any(k.startswith(prefix) for k in hashes), f"no artefact {prefix}* in {REFERENCE.name}"


def test_checkpoint_digest_sees_one_ulp_and_ignores_time(ident, tmp_path: Path) -> None:
    w = torch.linspace(-1, 1, 12).reshape(3, 4)
    ckpt = {"model": {"model.head.fc.weight": w, "model.tokenizer.rcc.bn.running_mean": torch.zeros(4)},
            "history": [{"epoch": 0.0, "train_loss": 0.25}], "elapsed_seconds": 1.0,
            "versions": {"torch": "x"}, "config": {"train": {"lr": 1e-3}, "data": {"features_dir": "features"}}}
    torch.save(ckpt, tmp_path / "a.pt")
    base = ident.checkpoint_digests(tmp_path / "a.pt")
    assert set(base) == {"model[model.head.fc]", "model[model.tokenizer.rcc]", "history", "config[train]", "config[data]"}

    torch.save({**ckpt, "elapsed_seconds": 99.0, "versions": {"torch": "y"}}, tmp_path / "b.pt")
    assert ident.checkpoint_digests(tmp_path / "b.pt") == base  # time and versions are not results

    bumped = w.clone()
    bumped[1, 2] = torch.nextafter(bumped[1, 2], torch.tensor(2.0))  # one ulp
    torch.save({**ckpt, "model": {**ckpt["model"], "model.head.fc.weight": bumped}}, tmp_path / "c.pt")
    diffs = ident.compare(base, ident.checkpoint_digests(tmp_path / "c.pt"))
    assert diffs == ["differs: model[model.head.fc]"]


def test_hdf5_digest_reads_values_not_attributes(ident, tmp_path: Path) -> None:
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)

    def write(name: str, data: np.ndarray, version: int) -> dict[str, str]:
        with h5py.File(tmp_path / name, "w") as f:
            f.create_dataset("features", data=data)
            f.create_dataset("clip_ids", data=np.array(["a", "b"], dtype=object), dtype=h5py.string_dtype())
            f.attrs["format_version"] = version
        return ident.hdf5_digests(tmp_path / name)

    base = write("a.h5", x, 1)
    assert list(base) == ["clip_ids", "features"]
    assert write("b.h5", x, 2) == base  # a format version attribute added or changed: same values
    assert write("c.h5", x.reshape(2, 4, 3), 1)["features"] != base["features"]  # same bytes, other shape
    y = x.copy()
    y[1, 2, 3] = np.nextafter(y[1, 2, 3], np.float32(np.inf))
    assert write("d.h5", y, 1)["features"] != base["features"]


def test_compare_names_missing_and_new_artefacts(ident) -> None:
    assert ident.compare({"a": "1", "b": "2"}, {"a": "1", "b": "2"}) == []
    assert ident.compare({"a": "1", "b": "2"}, {"a": "0", "c": "3"}) == [
        "differs: a", "missing (in the reference only): b", "new (not in the reference): c"]


def test_fingerprint_mismatch_names_each_difference(ident) -> None:
    ref = {"cpu_model": "AMD EPYC", "cpu_flags": ["avx2", "avx512f"], "packages": {"torch": "2.5.1", "numpy": "2.1"}}
    cur = {"cpu_model": "AMD EPYC", "cpu_flags": ["avx2"], "packages": {"torch": "2.6.0", "numpy": "2.1"}}
    assert ident.fingerprint_mismatch(ref, ref) == []
    assert ident.fingerprint_mismatch(ref, cur) == ["cpu_flags: ['avx2', 'avx512f'] -> ['avx2']", "torch 2.5.1 -> 2.6.0"]
