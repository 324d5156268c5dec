"""Feature extraction (spec section 4): STFT/mel front end, named feature channels, WPE
direct/reverberant split, per-clip HDF5 files, merged split files and normalisation statistics.

Modules, lowest floor first: :mod:`~seld.features.params` (STFT/mel/WPE settings),
:mod:`~seld.features.stft`, :mod:`~seld.features.wpe` (batched torch WPE),
:mod:`~seld.features.channels` (the channel registry), :mod:`~seld.features.config` (FeatureConfig),
:mod:`~seld.features.normalization` (per-channel mean/std of the training splits),
:mod:`~seld.features.clip_files` (a clip's file: path, settings, validity, writer),
:mod:`~seld.features.extract` (features of a batch of clips; the run writing one file per clip),
:mod:`~seld.features.merge` (one file per split); :mod:`~seld.features.workers` (worker processes
that die with their parent; the run stops when one dies).
"""
