"""Model parts, one file each, selected by name from YAML (see ``registry``).

* ``conformer``: macaron conformer block (relative positional MHSA).  * ``rcc``: residual CNN-conformer encoder.
* ``beats``: BEATs transformer.  * ``beats_checkpoint``: the official BEATs file.  * ``beats_source``: BEATs source encoder.
* ``fusion``: segment embeddings + multi-feature attention.  * ``projection``: MLP + pooling (attention | sum).
* ``tokenizer``: the three-stream tokenizer.  * ``heads``: pre-training, GREP and TREP heads.
* ``pretrain``: tokenizer + pre-training head.  * ``summary``: parameter counts per part.
* ``lookup``: name -> class lookup shared by ``heads`` and ``registry`` (no import circle).
* ``tiny``: tiny configs of every part (tests, smoke runs, the benchmarks' ``tiny`` settings).
"""
from seld.models.beats import BEATs, BEATsConfig
from seld.models.beats_checkpoint import (
    load_beats_checkpoint,
    load_beats_state,
    read_beats_checkpoint,
    save_beats_checkpoint,
)
from seld.models.beats_source import (
    BeatsEncoderConfig,
    BeatsSourceEncoder,
    interpolate_patch_kernel,
)
from seld.models.conformer import ConformerBlock, ConformerConfig, ConformerStack
from seld.models.fusion import FusionConfig, MultiFeatureAttention
from seld.models.heads import GrepHead, HeadConfig, PretrainHead, TrepHead, build_head
from seld.models.pretrain import ModelConfig, PretrainModel
from seld.models.projection import AttentivePooling, Projection
from seld.models.rcc import RCCConfig, RCCEncoder
from seld.models.registry import HEADS, SOURCE_ENCODERS, get_head, get_source_encoder
from seld.models.summary import count_parameters
from seld.models.tokenizer import STREAMS, Tokenizer, TokenizerConfig, build_tokenizer

__all__ = [
    "AttentivePooling", "BEATs", "BEATsConfig", "BeatsEncoderConfig", "BeatsSourceEncoder", "ConformerBlock",
    "ConformerConfig", "ConformerStack", "FusionConfig", "GrepHead", "HEADS", "HeadConfig", "ModelConfig",
    "MultiFeatureAttention", "PretrainHead", "PretrainModel", "Projection", "RCCConfig", "RCCEncoder",
    "SOURCE_ENCODERS", "STREAMS", "Tokenizer", "TokenizerConfig", "TrepHead", "build_head", "build_tokenizer",
    "count_parameters", "get_head", "get_source_encoder", "interpolate_patch_kernel", "load_beats_checkpoint",
    "load_beats_state", "read_beats_checkpoint", "save_beats_checkpoint",
]
