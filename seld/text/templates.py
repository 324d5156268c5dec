"""The 50 sentence frames ("templates") that carry the three audio tokens (spec section 6).

Every template holds each slot ``{SRC}`` (event class words), ``{DOA}`` (azimuths) and
``{DIST}`` (distances) exactly once. Most put them in that order; a few put them in another order
("From direction {DOA}, about {DIST} away, comes the sound of {SRC}.") for variety: whatever the
order of appearance, token positions are always reported as (SRC, DOA, DIST).

Writing rules, checked by the tests, so that one frame reads well for 1 and for several sources
(see :func:`seld.text.sentences.ground_truth_sentence`):

- starts with a capital letter (never with a slot) and ends with a single ``.``;
- the subject is a singular mass noun ("The sound of {SRC} comes ..."), so the verb agrees with
  "man" as well as with "man and woman";
- a noun directly before ``{DOA}`` is one of :data:`seld.text.sentences.PLURAL_NOUNS`
  ("direction", "azimuth"), which becomes plural for several sources; other words around the
  slots read the same for one or several values ("about 3 m and 5 m away").

The first four are the seed's examples (written there with ``<SRC>`` etc.).
"""
from __future__ import annotations

import numpy as np

SLOT_SRC = "{SRC}"
SLOT_DOA = "{DOA}"
SLOT_DIST = "{DIST}"
SLOTS: tuple[str, str, str] = (SLOT_SRC, SLOT_DOA, SLOT_DIST)
"""Slot markers in template text, in the canonical (SRC, DOA, DIST) order."""

SEED_TEMPLATES: tuple[str, ...] = (
    "The sonic impression of {SRC} originates from direction {DOA}, nearly {DIST} distant.",
    "The sound of {SRC} comes from direction {DOA}, approximately {DIST} away.",
    "The captured audio of {SRC} is localized at direction {DOA}, about {DIST} away.",
    "The acoustic presence of {SRC} is acoustically detected from direction {DOA}, approximately {DIST} distant.",
)
"""The seed README's four placeholder templates (0, 1, 2 and 3 source examples)."""

TEMPLATES: tuple[str, ...] = SEED_TEMPLATES + (
    "The noise of {SRC} arrives from direction {DOA}, roughly {DIST} away.",
    "A recording of {SRC} is heard from direction {DOA}, about {DIST} from the microphone.",
    "The audio event of {SRC} is located at azimuth {DOA}, approximately {DIST} from the listener.",
    "Listeners can hear {SRC} coming from direction {DOA}, around {DIST} away.",
    "The signal of {SRC} reaches the microphones from direction {DOA}, some {DIST} away.",
    "The stereo recording captures {SRC} at direction {DOA}, roughly {DIST} distant.",
    "From direction {DOA}, about {DIST} away, comes the sound of {SRC}.",
    "At azimuth {DOA} and roughly {DIST} away, the audio of {SRC} can be heard.",
    "The microphone picks up {SRC} from direction {DOA}, approximately {DIST} away.",
    "The emitted sound of {SRC} travels from direction {DOA}, about {DIST} distant.",
    "The auditory scene contains {SRC} at direction {DOA}, nearly {DIST} from the listener.",
    "The acoustic event of {SRC} is perceived from direction {DOA}, roughly {DIST} away.",
    "The acoustic emission of {SRC} is positioned at azimuth {DOA}, about {DIST} away.",
    "The sound field carries {SRC} from direction {DOA}, about {DIST} away.",
    "The audio clip reveals {SRC} at direction {DOA}, around {DIST} distant.",
    "A listener would perceive {SRC} from direction {DOA}, about {DIST} away.",
    "The recording features {SRC} arriving from direction {DOA}, roughly {DIST} away.",
    "The acoustic signature of {SRC} points to direction {DOA}, approximately {DIST} away.",
    "The scene includes {SRC}, heard from direction {DOA} at about {DIST} distance.",
    "Sound from {SRC} is detected at azimuth {DOA}, nearly {DIST} away.",
    "The sound of {SRC} is estimated to come from direction {DOA}, roughly {DIST} from the microphones.",
    "The acoustic activity of {SRC} appears at direction {DOA}, approximately {DIST} distant.",
    "In this scene, the audio of {SRC} arrives from azimuth {DOA}, about {DIST} away.",
    "The sound of {SRC} is heard {DIST} away, from direction {DOA}.",
    "Roughly {DIST} away, at direction {DOA}, the sound of {SRC} is present.",
    "The audio scene has {SRC} sounding from direction {DOA}, approximately {DIST} away.",
    "The acoustic trace of {SRC} is found at direction {DOA}, roughly {DIST} from the listener.",
    "The audio of {SRC} is coming from direction {DOA}, situated about {DIST} away.",
    "The sound produced by {SRC} comes from direction {DOA}, approximately {DIST} away.",
    "The sound made by {SRC} is localized at azimuth {DOA}, nearly {DIST} away.",
    "The audible presence of {SRC} is registered at direction {DOA}, about {DIST} distant.",
    "The microphones register {SRC} from direction {DOA}, roughly {DIST} away.",
    "The soundscape features {SRC} from direction {DOA}, approximately {DIST} from the listener.",
    "The acoustic content of {SRC} emerges from direction {DOA}, around {DIST} away.",
    "The sound of {SRC} can be located at direction {DOA}, about {DIST} away.",
    "Toward direction {DOA}, around {DIST} away, the audio of {SRC} is heard.",
    "The spatial audio shows {SRC} at azimuth {DOA}, roughly {DIST} away.",
    "The noise made by {SRC} is picked up from direction {DOA}, approximately {DIST} distant.",
    "The recorded sound of {SRC} originates at direction {DOA}, about {DIST} from the microphone.",
    "The sound of {SRC} is audible from direction {DOA}, nearly {DIST} away.",
    "The acoustic evidence of {SRC} is observed at direction {DOA}, around {DIST} away.",
    "The sound energy of {SRC} arrives from direction {DOA}, approximately {DIST} from the listener.",
    "The stereo microphone detects {SRC} from direction {DOA}, approximately {DIST} away.",
    "The audio of {SRC} is positioned at azimuth {DOA}, roughly {DIST} distant.",
    "The sound of {SRC} is placed at direction {DOA}, about {DIST} from the recording position.",
    "The acoustic scene reveals {SRC} from direction {DOA}, approximately {DIST} away.",
)
"""All 50 templates; index 1 is the spec's example ("The sound of {SRC} comes from ...")."""


def sample_template(rng: np.random.Generator, templates: tuple[str, ...] = TEMPLATES) -> str:
    """Return one template drawn uniformly with ``rng`` (one draw per clip and training step)."""
    return templates[int(rng.integers(len(templates)))]
