"""DCASE2025 stereo data: clip discovery, audio and metadata I/O, ADPIT targets, the HDF5 feature-file schema,
the training dataset and its augmentation, normalisation statistics (the simulator lives in :mod:`seld.sim`)."""
