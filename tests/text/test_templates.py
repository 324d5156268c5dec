"""The 50 templates: count, slots, writing rules that make plural sentences read well."""
from __future__ import annotations

import re

import numpy as np

from seld.text.sentences import PLURAL_NOUNS
from seld.text.templates import SEED_TEMPLATES, SLOTS, TEMPLATES, sample_template

# The seed README's placeholder templates, copied as written there.
SEED_TEXT = (
    "The sonic impression of <SRC> originates from direction <DOA>, nearly <DIST> distant.",
    "The sound of <SRC> comes from direction <DOA>, approximately <DIST> away.",
    "The captured audio of <SRC> is localized at direction <DOA>, about <DIST> away.",
    "The acoustic presence of <SRC> is acoustically detected from direction <DOA>, approximately <DIST> distant.",
)


def test_fifty_distinct_templates_include_the_seed_four():
    assert len(TEMPLATES) == 50
    assert len(set(TEMPLATES)) == 50
    for seed in SEED_TEXT:
        ours = seed.replace("<SRC>", "{SRC}").replace("<DOA>", "{DOA}").replace("<DIST>", "{DIST}")
        assert ours in TEMPLATES
    assert set(SEED_TEMPLATES) <= set(TEMPLATES)


def test_every_template_has_each_slot_once_and_sentence_shape():
    for t in TEMPLATES:
        assert [t.count(s) for s in SLOTS] == [1, 1, 1], t
        assert t[0].isupper() and not t.startswith("{"), t
        assert t.endswith(".") and t.count(".") == 1, t
        assert "<" not in t and ">" not in t, t
        assert len(re.findall(r"\{[A-Z]+\}", t)) == 3, t


def test_number_sensitive_nouns_only_directly_before_a_slot():
    # "direction"/"azimuth" turn plural for several sources; any other use would stay singular.
    for t in TEMPLATES:
        for noun in PLURAL_NOUNS:
            for m in re.finditer(rf"\b{noun}\b", t):
                after = t[m.end():].lstrip(" ")
                assert after.startswith("{") or noun == "distance", (noun, t)


def test_some_templates_put_the_slots_out_of_order():
    orders = {tuple(sorted(SLOTS, key=t.index)) for t in TEMPLATES}
    assert SLOTS in orders and len(orders) > 1


def test_sample_template_is_deterministic_and_covers_the_bank():
    a = [sample_template(np.random.default_rng(3)) for _ in range(3)]
    assert len(set(a)) == 1
    rng1, rng2 = np.random.default_rng(7), np.random.default_rng(7)
    draws1 = [sample_template(rng1) for _ in range(2000)]
    draws2 = [sample_template(rng2) for _ in range(2000)]
    assert draws1 == draws2
    assert set(draws1) == set(TEMPLATES)
