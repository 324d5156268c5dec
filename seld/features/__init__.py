"""Feature extraction (spec section 4): STFT/mel front end, named feature channels, WPE
direct/reverberant split, per-clip HDF5 files, merged split files and normalisation statistics.

Modules, lowest floor first: :mod:`~seld.features.params` (STFT/mel/WPE settings),
:mod:`~seld.features.stft`, :mod:`~seld.features.wpe` (batched torch WPE),
:mod:`~seld.features.channels` (the channel registry), :mod:`~seld.features.config` (FeatureConfig),
:mod:`~seld.features.extract` (per-clip files), :mod:`~seld.features.merge` (one file per split),
:mod:`~seld.features.normalization` (per-channel mean/std of the training splits).
"""
