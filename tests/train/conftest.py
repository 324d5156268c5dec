"""Shared set-up of the stage tests: a tiny simulated feature set and tiny stage configs.

The simulated set (16 clips: 12 in dev-train-synth, 4 in dev-test-synth, cheap WPE) and the
small pre-training checkpoints are built once per test session; the builders are memoised per
session so that ``tests/test_inference.py`` (outside this folder) shares them.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import torch

from seld.constants import SYNTH_TEST_SPLIT, SYNTH_TRAIN_SPLIT
from seld.data.dataset import StreamConfig
from seld.models import FusionConfig, RCCConfig, TokenizerConfig
from seld.models.heads import HeadConfig
from seld.models.pretrain import ModelConfig
from seld.models.text_encoders import TextEncoderConfig, tiny_text_encoder_config
from seld.tasks.finetune import FinetuneConfig, FinetuneModelConfig
from seld.tasks.pretrain import PretrainConfig
from seld.train.config import TrainConfig
from seld.train.data import DataConfig
from tests.models.tiny import EMBED_DIM, tiny_conformer, tiny_tokenizer

SIM_CLIPS = 16
SIM_SEED = 3
MINILM_WIDTH = 384

_SESSION: dict[Any, Any] = {}
"""Memo of the session builders, keyed by (what, options); cleared with the session's tmp folder."""


@dataclass(frozen=True)
class SimSet:
    """The simulated dataset: audio in the DCASE layout under ``data``, merged features under ``features``."""

    data: Path
    features: Path

    def wavs(self, split: str = SYNTH_TRAIN_SPLIT) -> list[Path]:
        return sorted((self.data / "stereo_dev" / split).glob("*.wav"))


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch on ``n`` threads inside the block, then restore the count it had."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread: tiny models gain nothing from threads, and on a busy 2-core box
    oversubscribed threads made a 30 s training run take minutes."""
    with torch_threads(1):
        yield


def _memo(factory: pytest.TempPathFactory, key: Any, build) -> Any:
    key = (str(factory.getbasetemp()), key)
    if key not in _SESSION:
        with single_thread():
            _SESSION[key] = build()
    return _SESSION[key]


def build_sim_set(factory: pytest.TempPathFactory) -> SimSet:
    """Generate, extract and merge the simulated set once per session (about 10 s on 2 cores)."""

    def build() -> SimSet:
        from seld.sim.generate import generate_dataset
        from seld.features.config import FeatureConfig, WpeConfig
        from seld.features.extract import extract_features
        from seld.features.merge import merge_splits

        root = factory.mktemp("simset")
        generate_dataset(root / "data", SIM_CLIPS, seed=SIM_SEED, workers=2, progress=False)
        cfg = FeatureConfig(
            dataset_root=str(root / "data"), output_dir=str(root / "features"),
            splits=[SYNTH_TRAIN_SPLIT, SYNTH_TEST_SPLIT], train_splits=[SYNTH_TRAIN_SPLIT],
            wpe=WpeConfig(taps=5, iterations=1), workers=1,  # cheap WPE: same channels, 10x faster
        )
        report = extract_features(cfg, progress=False)
        assert report.ok and report.done == SIM_CLIPS, report
        merge_splits(cfg)
        return SimSet(root / "data", root / "features")

    return _memo(factory, "simset", build)


def data_config(sim: SimSet, val: bool = False, **streams: Any) -> DataConfig:
    return DataConfig(
        features_dir=str(sim.features), train_splits=[SYNTH_TRAIN_SPLIT],
        val_splits=[SYNTH_TEST_SPLIT] if val else [], streams=StreamConfig(**streams),
    )


def train_config(out_dir: Path, **kw: Any) -> TrainConfig:
    base: dict[str, Any] = dict(
        out_dir=str(out_dir), epochs=1, batch_size=4, lr=1e-3, num_workers=0, device="cpu",
        progress=False, tensorboard=False, seed=0, resume="never",
    )
    base.update(kw)
    return TrainConfig(**base)


def small_tokenizer(source: str = "rcc", d_model: int = 32, embed_dim: int = EMBED_DIM, dropout: float = 0.0) -> TokenizerConfig:
    """A tokenizer a bit wider than ``tests.models.tiny`` (d_model 32, 146 k parameters): it can overfit 12 clips."""

    def rcc(c: int) -> RCCConfig:
        return RCCConfig(in_channels=c, channels=[d_model // 4, d_model // 2, d_model // 2, d_model],
                         num_conformers=1, conformer=tiny_conformer(dropout))

    return tiny_tokenizer(source, rcc=rcc(1), doa=rcc(4), dist=rcc(2), d_model=d_model, embed_dim=embed_dim,
                          fusion=FusionConfig(num_blocks=1, conformer=tiny_conformer(dropout)))


def pretrain_config(sim: SimSet, out_dir: Path, tokenizer: TokenizerConfig | None = None, val: bool = False,
                    streams: dict[str, Any] | None = None, **train: Any) -> PretrainConfig:
    return PretrainConfig(
        data=data_config(sim, val=val, **(streams or {})),
        model=ModelConfig(tokenizer=tokenizer or tiny_tokenizer()),
        train=train_config(out_dir, **train),
    )


def pretrained_checkpoint(factory: pytest.TempPathFactory, source: str = "rcc", embed_dim: int = EMBED_DIM) -> Path:
    """``last.pt`` of a 2-step pre-training run of the tiny tokenizer (memoised per session)."""

    def build() -> Path:
        from seld.tasks.pretrain import run_pretraining

        sim = build_sim_set(factory)
        out = factory.mktemp(f"pretrain_{source}_{embed_dim}")
        cfg = pretrain_config(sim, out, tiny_tokenizer(source, embed_dim=embed_dim), max_steps=2)
        run_pretraining(cfg)
        return out / "checkpoints" / "last.pt"

    return _memo(factory, ("pretrained", source, embed_dim), build)


def text_encoder_config(kind: str) -> TextEncoderConfig:
    """Tiny random-init encoder of ``kind`` whose width matches the tiny tokenizer (12)."""
    return tiny_text_encoder_config(kind, width=EMBED_DIM, layers=1, heads=2)


def finetune_config(sim: SimSet, out_dir: Path, pretrained: Path | None, kind: str = "bert", head: str = "grep",
                    text_encoder: TextEncoderConfig | None = None, val: bool = False, **train: Any) -> FinetuneConfig:
    return FinetuneConfig(
        data=data_config(sim, val=val),
        model=FinetuneModelConfig(
            pretrained=str(pretrained) if pretrained is not None else None,
            tokenizer=None if pretrained is not None else tiny_tokenizer(),
            text_encoder=text_encoder or text_encoder_config(kind),
            head=HeadConfig(type=head),
        ),
        train=train_config(out_dir, **{"batch_size": 2, **train}),
    )


def finetuned_checkpoint(factory: pytest.TempPathFactory, kind: str = "bert", head: str = "grep") -> Path:
    """``last.pt`` of a 2-step fine-tuning run (tiny encoder of ``kind``) from the tiny pre-training."""

    def build() -> Path:
        from seld.tasks.finetune import run_finetuning

        sim = build_sim_set(factory)
        out = factory.mktemp(f"finetune_{kind}_{head}")
        run_finetuning(finetune_config(sim, out, pretrained_checkpoint(factory), kind, head, max_steps=2))
        return out / "checkpoints" / "last.pt"

    return _memo(factory, ("finetuned", kind, head), build)


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> SimSet:
    return build_sim_set(tmp_path_factory)


@pytest.fixture(autouse=True)
def _single_thread(request):
    """:func:`single_thread` around every stage test (module-scoped fixtures use it themselves)."""
    if request.node.path.name != "test_stages.py":
        yield
        return
    with single_thread():
        yield
