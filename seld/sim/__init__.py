"""The simulator of stereo SELD data (spec section 7), one floor above :mod:`seld.data`, whose file
layout and CSV writers it uses; nothing in the training path imports it.

* ``signals``: signal building blocks (resonators, band-limited noise, envelopes).
* ``sounds``: procedural dry sounds of the 13 classes.
* ``rooms``: shoebox rooms and the coincident W/Y pair's impulse responses.
* ``scenes``: scenes (events in a room) and their stereo audio; one source at a known position.
* ``generate``: a simulated set on disk (``seld synth``) and its summary.
"""
