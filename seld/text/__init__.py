"""Text side of fine-tuning: templates, ground-truth sentences and placeholder tokenization.

- :mod:`seld.text.templates`: the 50 templates with ``{SRC}``, ``{DOA}``, ``{DIST}`` slots.
- :mod:`seld.text.sentences`: ground-truth sentences per frame (no torch needed).
- :mod:`seld.text.tokenization`: placeholder special tokens, :class:`TemplateTokenizer`
  (imports torch; import it from its module).
- :mod:`seld.text.captions`: predictions written as the ground truth is (frame and segment captions).
- :mod:`seld.text.paraphrases`: class descriptions and the fixed paraphrases of the class names.
"""
from seld.text.sentences import NO_SOURCE_SENTENCE, frame_sentences, ground_truth_sentence
from seld.text.templates import SEED_TEMPLATES, SLOTS, TEMPLATES, sample_template

__all__ = [
    "NO_SOURCE_SENTENCE",
    "SEED_TEMPLATES",
    "SLOTS",
    "TEMPLATES",
    "frame_sentences",
    "ground_truth_sentence",
    "sample_template",
]
