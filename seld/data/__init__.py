"""DCASE2025 stereo data: clip discovery, audio and metadata I/O, ADPIT targets, synthetic scenes."""
