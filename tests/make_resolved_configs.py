"""Write the resolved form of every shipped config to ``tests/resolved_configs/`` (one JSON each).

The stored files are the reference of ``tests/test_config_inheritance.py``: they were written by
the code of commit ac3216e (before the configs became ``base:`` overlays), so the test proves that
every shipped config still resolves to the same dataclass, key by key. Regenerate them only from a
checkout of the commit whose behaviour is the reference:

    git worktree add /tmp/ref ac3216e
    PYTHONPATH=/tmp/ref python tests/make_resolved_configs.py --root /tmp/ref --out tests/resolved_configs

Each JSON holds ``config`` (the path in the repository), ``schema`` (the class name, see
:data:`SCHEMAS`) and ``resolved`` (``seld.config.to_dict`` of the loaded dataclass).
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import subprocess
import sys
from pathlib import Path

SCHEMAS: dict[str, str] = {
    "configs/*-*-*.yml": "FinetuneConfig",
    "configs/*/finetune*.yml": "FinetuneConfig",
    "finetuning/config.yml": "FinetuneConfig",
    "configs/pretrain_*.yml": "PretrainConfig",
    "configs/*/pretrain.yml": "PretrainConfig",
    "pretraining/config.yml": "PretrainConfig",
    "configs/baseline_*.yml": "BaselineConfig",
    "configs/*/baseline.yml": "BaselineConfig",
    "features/config.yml": "FeatureConfig",
    "configs/*/features.yml": "FeatureConfig",
    "configs/synth.yml": "SynthConfig",
}
"""Shipped config path pattern -> the name of the schema it is loaded with (first match wins)."""


def schema_name(path: str) -> str:
    """The schema class name of the shipped config ``path`` (relative to the repository root)."""
    for pattern, name in SCHEMAS.items():
        if fnmatch.fnmatchcase(path, pattern):
            return name
    raise SystemExit(f"{path}: no schema known for this config; add its pattern to SCHEMAS")


def reference_name(path: str) -> str:
    """``configs/benchmark/pretrain.yml`` -> ``configs__benchmark__pretrain.yml.json``."""
    return path.replace("/", "__") + ".json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, type=Path, help="checkout whose configs and code are the reference")
    parser.add_argument("--out", required=True, type=Path, help="folder for the JSON files")
    args = parser.parse_args(argv)

    import seld
    from seld.config import load_config, to_dict
    from seld.data.synth import SynthConfig
    from seld.features.config import FeatureConfig
    from seld.train import stages

    classes = {"FinetuneConfig": stages.FinetuneConfig, "PretrainConfig": stages.PretrainConfig,
               "BaselineConfig": stages.BaselineConfig, "FeatureConfig": FeatureConfig, "SynthConfig": SynthConfig}
    files = subprocess.run(["git", "ls-files", "*.yml", "*.yaml"], cwd=args.root, check=True,
                           capture_output=True, text=True).stdout.split()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in files:
        name = schema_name(path)
        resolved = to_dict(load_config(args.root / path, classes[name]))
        record = {"config": path, "schema": name, "resolved": resolved}
        (args.out / reference_name(path)).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        print(f"{path}: {name}")
    print(f"{len(files)} configs -> {args.out}, resolved by {Path(seld.__file__).parent}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
