"""Words for asking the model about a class: class descriptions, and paraphrases to test them with.

- :data:`CLASS_DESCRIPTIONS`: several short descriptions per class. A query is matched to the
  class whose descriptions its text embedding is closest to (:class:`seld.query.ClassMatcher`),
  so "phone ringing", "someone walking" or "a tune" name a class without any keyword list.
- :data:`PARAPHRASES`: a fixed list of ways a user may name each class, written once, kept apart
  from the descriptions (no paraphrase is a description) and never tuned on: the paraphrase
  accuracy of a text encoder (:func:`seld.query.paraphrase_accuracy`) measures how much of its
  language knowledge reaches the class step.
- :data:`NO_CLASS_QUERIES`: queries that name none of the 13 classes; the class step must answer
  them with "no match".

Classes are indices into :data:`seld.constants.SHORT_CLASS_NAMES`.
"""
from __future__ import annotations

from seld.constants import NUM_CLASSES, SHORT_CLASS_NAMES

DEFAULT_MATCH_THRESHOLD: float = 0.35
"""Centred cosine (see :mod:`seld.query`) below which a query names no class. Measured with the
offline MiniLM, both poolings: "where is the <class>?" scores 0.43 or more, the
:data:`NO_CLASS_QUERIES` 0.30 or less."""

CLASS_DESCRIPTIONS: tuple[tuple[str, ...], ...] = (
    ("the sound of a woman speaking", "a woman's voice talking", "female speech"),
    ("the sound of a man speaking", "a man's voice talking", "male speech"),
    ("the sound of people clapping their hands", "applause from an audience", "hands clapping together"),
    ("the sound of a telephone ringing", "a telephone ringtone", "a ringing phone on the desk"),
    ("the sound of people laughing", "laughter", "a person laughing out loud"),
    (
        "domestic sounds in a home",
        "household noises such as a vacuum cleaner or dishes",
        "kitchen sounds of cooking and cleaning",
    ),
    ("the sound of footsteps", "a person walking across the floor", "the steps of someone walking"),
    ("the sound of a door opening or closing", "a door being shut", "a door swinging open"),
    ("the sound of music playing", "a song playing from a speaker", "recorded music"),
    (
        "the sound of a musical instrument being played",
        "someone playing the piano",
        "someone playing a guitar or a violin",
    ),
    ("the sound of water running from a tap", "a faucet running into a sink", "water flowing from a water tap"),
    ("the sound of a bell ringing", "the chime of a bell", "a bell being struck"),
    ("the sound of knocking", "someone knocking on a door", "a knock on wood"),
)
"""Descriptions per class, in class-index order (``CLASS_DESCRIPTIONS[3]`` describes telephone)."""

PARAPHRASES: tuple[tuple[str, int], ...] = (
    ("a lady is talking", 0),
    ("female voice", 0),
    ("a girl saying something", 0),
    ("she is speaking", 0),
    ("a woman talks", 0),
    ("a gentleman is talking", 1),
    ("male voice", 1),
    ("a guy saying something", 1),
    ("he is speaking", 1),
    ("a man talks", 1),
    ("applause", 2),
    ("people applauding", 2),
    ("a round of applause", 2),
    ("hands clap", 2),
    ("people clap along", 2),
    ("phone ringing", 3),
    ("a cell phone rings", 3),
    ("an incoming call", 3),
    ("mobile phone ringtone", 3),
    ("the landline", 3),
    ("someone laughing", 4),
    ("giggling", 4),
    ("people chuckling", 4),
    ("a burst of laughter", 4),
    ("laughing", 4),
    ("vacuum cleaner", 5),
    ("dishes clattering in the kitchen", 5),
    ("household chores", 5),
    ("pots and pans", 5),
    ("noises around the house", 5),
    ("someone walking", 6),
    ("steps on the floor", 6),
    ("a person walking by", 6),
    ("footfalls", 6),
    ("shoes on the stairs", 6),
    ("a door slams", 7),
    ("the door opens", 7),
    ("someone shuts the door", 7),
    ("the door creaks", 7),
    ("the front door closes", 7),
    ("a tune", 8),
    ("a song", 8),
    ("background music", 8),
    ("a melody on the radio", 8),
    ("a pop song", 8),
    ("someone plays the guitar", 9),
    ("piano notes", 9),
    ("a violin", 9),
    ("playing the drums", 9),
    ("an instrument", 9),
    ("running water", 10),
    ("the faucet is on", 10),
    ("water pouring into the sink", 10),
    ("tap water", 10),
    ("a dripping tap", 10),
    ("a bell rings", 11),
    ("church bells", 11),
    ("ding dong", 11),
    ("a small bell chiming", 11),
    ("a bicycle bell", 11),
    ("knock knock", 12),
    ("someone knocks", 12),
    ("rapping on wood", 12),
    ("tapping on a door", 12),
    ("banging on the door", 12),
)
"""(paraphrase, class index): 65 ways to name the 13 classes, 5 each; none is a description."""

NO_CLASS_QUERIES: tuple[str, ...] = (
    "what is the weather like tomorrow?",
    "how much does a train ticket to Paris cost?",
    "the stock market fell by two percent today",
    "a recipe for chocolate cake",
    "what is the capital of Australia?",
)
"""Queries that name no class of the 13 (the class step should answer "no match")."""


def _check() -> None:
    """Import-time checks that keep the lists consistent with the 13 classes."""
    if len(CLASS_DESCRIPTIONS) != NUM_CLASSES or not all(CLASS_DESCRIPTIONS):
        raise AssertionError(f"CLASS_DESCRIPTIONS needs descriptions for each of the {NUM_CLASSES} classes")
    descriptions = {d.lower() for per_class in CLASS_DESCRIPTIONS for d in per_class}
    for text, c in PARAPHRASES:
        if not 0 <= c < NUM_CLASSES:
            raise AssertionError(f"paraphrase {text!r}: class {c} outside 0..{NUM_CLASSES - 1}")
        if text.lower() in descriptions:
            raise AssertionError(f"paraphrase {text!r} ({SHORT_CLASS_NAMES[c]}) is also a class description")


_check()
