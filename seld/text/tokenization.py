"""Tokenizing templates with placeholder special tokens, and ground-truth sentences (spec section 6).

A template's slots ``{SRC}``, ``{DOA}``, ``{DIST}`` become the special tokens :data:`PLACEHOLDERS`,
each of which the tokenizer maps to one id of its own; the slot positions are then found by
looking for those ids (never by splitting words). Sequences are padded to the longest in the
batch, never to the context length, and never truncated (too long raises).

Where the placeholder ids come from:

- Hugging Face tokenizers (BERT WordPiece, CLIP BPE): ``add_special_tokens`` appends them after
  the vocabulary (BERT-base: 30522..30524; CLIP: 49408..49410).
- open_clip's ``SimpleTokenizer``: built with ``additional_special_tokens``, which appends them
  after ``<end_of_text>`` (49408..49410). It lower-cases text before matching, so they are
  registered lower-case (``<src>``...).

Either way the ids lie past the text encoder's embedding table. That is safe because an encoder
never looks them up: before the embedding lookup the slot ids are swapped for the pad id and
after it the three rows are overwritten with the injected audio tokens
(:mod:`seld.models.text_encoders`). Pooling never relies on "the largest id is the end token".
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import torch

from seld.errors import ConfigError
from seld.text.sentences import normalize_template
from seld.text.templates import SLOTS

PLACEHOLDERS: tuple[str, str, str] = ("<SRC>", "<DOA>", "<DIST>")
"""Special tokens standing for the (source, DOA, distance) audio tokens, in slot order."""

_PROBE_SENTENCE = "the sound of a door comes from the left"
"""Ordinary words every real English vocabulary knows (to catch all-[UNK] tokenizers)."""


@dataclass(frozen=True)
class TemplateBatch:
    """Tokenized templates, padded to the longest in the batch.

    ``input_ids`` (B, L) long; ``attention_mask`` (B, L) long, 1 = token, 0 = padding;
    ``slot_positions`` (B, 3) long, positions of (SRC, DOA, DIST) whatever their order in the
    text; ``eot_positions`` (B,) long, position of the end token (CLIP [EOT] / BERT [SEP]).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    slot_positions: torch.Tensor
    eot_positions: torch.Tensor

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def to(self, device: torch.device | str) -> "TemplateBatch":
        """Return the batch with every tensor on ``device``."""
        return TemplateBatch(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            self.slot_positions.to(device),
            self.eot_positions.to(device),
        )


class SentenceBatch(NamedTuple):
    """Tokenized sentences: ``input_ids`` (N, L), ``attention_mask`` (N, L), ``eot_positions`` (N,)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    eot_positions: torch.Tensor


class TemplateTokenizer:
    """Tokenizer of templates (with placeholder tokens) and of plain sentences.

    Build one with :meth:`from_hf`, :meth:`from_hf_pretrained` or :meth:`from_open_clip`.
    Attributes: ``slot_ids`` (3 ids of :data:`PLACEHOLDERS`), ``pad_id``, ``bos_id`` (CLIP
    start / BERT [CLS]), ``eot_id`` (CLIP end / BERT [SEP]), ``unk_id`` (None if the vocabulary
    has no unknown token), ``max_length`` (longest sequence allowed, special tokens included).
    """

    slot_ids: tuple[int, int, int]
    pad_id: int
    bos_id: int
    eot_id: int
    unk_id: int | None
    max_length: int
    name: str

    # -- backend hooks -------------------------------------------------------------------------
    def encode_ids(self, text: str) -> list[int]:
        """Return the ids of ``text`` with the start and end tokens, unpadded."""
        raise NotImplementedError

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Return the text of ``ids`` without special tokens or padding."""
        raise NotImplementedError

    # -- constructors --------------------------------------------------------------------------
    @classmethod
    def from_hf(cls, tokenizer: Any, max_length: int | None = None, name: str = "") -> "TemplateTokenizer":
        """Return a tokenizer wrapping a Hugging Face tokenizer, to which the placeholders are added in place."""
        return HFTemplateTokenizer(tokenizer, max_length=max_length, name=name)

    @classmethod
    def from_hf_pretrained(cls, name_or_path: str, max_length: int | None = None) -> "TemplateTokenizer":
        """Return the Hugging Face tokenizer of a hub name or local folder, with the placeholders added.

        The special value :data:`OPEN_CLIP_BPE` builds the CLIP BPE tokenizer from the vocabulary
        open_clip ships (no download).
        """
        if name_or_path == OPEN_CLIP_BPE:
            return HFTemplateTokenizer(clip_bpe_hf_tokenizer(), max_length=max_length, name=OPEN_CLIP_BPE)
        from transformers import AutoTokenizer, BertTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        except (OSError, ValueError) as err:
            # A folder holding only a WordPiece vocab.txt (bert-base-uncased style) has no config for
            # AutoTokenizer; BertTokenizer.from_pretrained reads it. (BertTokenizer(vocab_file=...) does
            # not: in transformers 5 it silently maps every word to [UNK].)
            if not (Path(name_or_path) / "vocab.txt").is_file():
                raise ConfigError(f"cannot load a tokenizer from {name_or_path!r}: {err}") from err
            tokenizer = BertTokenizer.from_pretrained(name_or_path)
        return HFTemplateTokenizer(tokenizer, max_length=max_length, name=name_or_path)

    @classmethod
    def from_open_clip(cls, model_name: str = "ViT-B-16", context_length: int | None = None) -> "TemplateTokenizer":
        """Return the tokenizer open_clip uses for ``model_name``, with the placeholders added."""
        import open_clip
        from open_clip.tokenizer import HFTokenizer, SimpleTokenizer

        base = open_clip.get_tokenizer(model_name)
        if isinstance(base, SimpleTokenizer):
            return OpenClipTemplateTokenizer(context_length=context_length or base.context_length, name=model_name)
        if isinstance(base, HFTokenizer):
            return HFTemplateTokenizer(base.tokenizer, max_length=context_length or base.context_length, name=model_name)
        raise ConfigError(
            f"open_clip model {model_name!r} uses a {type(base).__name__}; only SimpleTokenizer and HFTokenizer "
            "are supported"
        )

    # -- shared logic ---------------------------------------------------------------------------
    def _checked_ids(self, text: str) -> list[int]:
        ids = self.encode_ids(text)
        if len(ids) > self.max_length:
            raise ValueError(f"{self.name}: {len(ids)} tokens exceed the limit of {self.max_length}: {text!r}")
        if ids[0] != self.bos_id or ids[-1] != self.eot_id:
            raise ConfigError(f"{self.name}: expected start id {self.bos_id} and end id {self.eot_id}, got {ids}")
        return ids

    def fits(self, text: str) -> bool:
        """Whether ``text`` with its start and end tokens fits ``max_length`` (results memoised)."""
        cache: dict[str, bool] = self.__dict__.setdefault("_fits_cache", {})
        if text not in cache:
            if len(cache) >= 200_000:
                cache.clear()
            cache[text] = len(self.encode_ids(text)) <= self.max_length
        return cache[text]

    def check_vocabulary(self) -> None:
        """Raise ConfigError if ordinary words come out as the unknown token (a vocabulary not loaded)."""
        ids = self.encode_ids(_PROBE_SENTENCE)[1:-1]
        if not ids or (self.unk_id is not None and all(i == self.unk_id for i in ids)):
            raise ConfigError(
                f"tokenizer {self.name!r} maps {_PROBE_SENTENCE!r} to unknown tokens {ids}: its vocabulary did "
                "not load (give a folder holding vocab.txt / tokenizer.json)"
            )
        if set(ids) & set(self.slot_ids):
            raise ConfigError(f"tokenizer {self.name!r} gives placeholder ids for ordinary words: {ids}")

    def _pad(self, seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if not seqs:
            raise ValueError("cannot tokenize an empty list")
        length = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), length), dtype=torch.long)
        for row, seq in enumerate(seqs):
            ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, : len(seq)] = 1
        eot = torch.tensor([len(s) - 1 for s in seqs], dtype=torch.long)
        return ids, mask, eot

    def encode_templates(self, templates: Sequence[str]) -> TemplateBatch:
        """Return templates (slots ``{SRC}`` or ``<SRC>``) tokenized as a :class:`TemplateBatch` (B, L)."""
        seqs, positions = [], []
        for template in templates:
            text = normalize_template(template)
            for slot, placeholder in zip(SLOTS, PLACEHOLDERS):
                text = text.replace(slot, placeholder)
            ids = self._checked_ids(text)
            where = []
            for placeholder, slot_id in zip(PLACEHOLDERS, self.slot_ids):
                hits = [i for i, t in enumerate(ids) if t == slot_id]
                if len(hits) != 1:
                    raise ConfigError(
                        f"{self.name}: placeholder {placeholder} (id {slot_id}) found {len(hits)} times in "
                        f"the tokens of {template!r}"
                    )
                where.append(hits[0])
            seqs.append(ids)
            positions.append(where)
        ids, mask, eot = self._pad(seqs)
        return TemplateBatch(ids, mask, torch.tensor(positions, dtype=torch.long), eot)

    def encode_sentences(self, sentences: Sequence[str]) -> SentenceBatch:
        """Return plain sentences tokenized and padded to the longest: ids (N, L), mask (N, L), eot (N,)."""
        seqs = []
        for sentence in sentences:
            ids = self._checked_ids(sentence)
            if set(ids) & set(self.slot_ids):
                raise ValueError(f"{self.name}: sentence holds a placeholder token: {sentence!r}")
            seqs.append(ids)
        return SentenceBatch(*self._pad(seqs))


class HFTemplateTokenizer(TemplateTokenizer):
    """:class:`TemplateTokenizer` over a Hugging Face tokenizer (BERT WordPiece, CLIP BPE)."""

    def __init__(self, tokenizer: Any, max_length: int | None = None, name: str = "") -> None:
        self.name = name or getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        # Added in place (a no-op when present): a deep copy would lose CLIPTokenizer's decode fix-up.
        tok = tokenizer
        tok.add_special_tokens({"additional_special_tokens": list(PLACEHOLDERS)})
        self.hf_tokenizer = tok
        slot_ids = tuple(int(i) for i in tok.convert_tokens_to_ids(list(PLACEHOLDERS)))
        self.unk_id = tok.unk_token_id
        if len(set(slot_ids)) != 3 or self.unk_id in slot_ids:
            raise ConfigError(f"tokenizer {self.name!r}: placeholders {PLACEHOLDERS} got ids {slot_ids}")
        self.slot_ids = slot_ids  # type: ignore[assignment]
        bos = tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id
        eot = tok.sep_token_id if tok.sep_token_id is not None else tok.eos_token_id
        if bos is None or eot is None or tok.pad_token_id is None:
            raise ConfigError(
                f"tokenizer {self.name!r} needs start ([CLS]/bos), end ([SEP]/eos) and pad tokens, got "
                f"{bos}, {eot}, {tok.pad_token_id}"
            )
        self.bos_id, self.eot_id, self.pad_id = int(bos), int(eot), int(tok.pad_token_id)
        limit = tok.model_max_length if tok.model_max_length and tok.model_max_length < 1_000_000 else None
        lengths = [n for n in (limit, max_length) if n]
        self.max_length = min(lengths) if lengths else 512
        self.check_vocabulary()

    def encode_ids(self, text: str) -> list[int]:
        return list(self.hf_tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        ids = [int(i) for i in ids]
        return self.hf_tokenizer.decode(ids, skip_special_tokens=True)


class OpenClipTemplateTokenizer(TemplateTokenizer):
    """:class:`TemplateTokenizer` over open_clip's byte-pair ``SimpleTokenizer`` (OpenAI CLIP vocabulary)."""

    def __init__(self, context_length: int = 77, bpe_path: str | None = None, name: str = "open_clip") -> None:
        from open_clip.tokenizer import SimpleTokenizer, default_bpe

        self.name = name
        # SimpleTokenizer lower-cases text before matching special tokens, so register them lower-case.
        self.simple_tokenizer = SimpleTokenizer(
            bpe_path=bpe_path or default_bpe(),
            additional_special_tokens=[p.lower() for p in PLACEHOLDERS],
            context_length=context_length,
        )
        st = self.simple_tokenizer
        self.slot_ids = tuple(st.encoder[p.lower()] for p in PLACEHOLDERS)  # type: ignore[assignment]
        self.bos_id, self.eot_id = st.sot_token_id, st.eot_token_id
        self.pad_id = 0  # open_clip pads with 0; padded positions are never read (causal mask, EOT pooling)
        self.unk_id = None  # byte-level BPE has no unknown token
        self.max_length = int(context_length)
        self.check_vocabulary()

    def encode_ids(self, text: str) -> list[int]:
        st = self.simple_tokenizer
        return [st.sot_token_id] + st.encode(text) + [st.eot_token_id]

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        ids = [int(i) for i in ids]
        if self.eot_id in ids:
            ids = ids[: ids.index(self.eot_id)]
        ids = [i for i in ids if i != self.bos_id]
        return self.simple_tokenizer.decode(ids).strip()


OPEN_CLIP_BPE = "open_clip_bpe"
"""Tokenizer name meaning "the CLIP BPE tokenizer built from open_clip's bundled vocabulary"."""


def clip_bpe_hf_tokenizer() -> Any:
    """Return a Hugging Face ``CLIPTokenizer`` built from the BPE merges open_clip ships (offline).

    Its ids equal OpenAI CLIP's (and open_clip's ``SimpleTokenizer``'s), so it serves
    ``CLIPTextModel`` checkpoints that come without tokenizer files.
    """
    from open_clip.tokenizer import SimpleTokenizer, default_bpe
    from transformers import CLIPTokenizer

    simple = SimpleTokenizer()
    vocab = dict(simple.encoder)
    vocab["<|startoftext|>"] = vocab.pop("<start_of_text>")
    vocab["<|endoftext|>"] = vocab.pop("<end_of_text>")
    with gzip.open(default_bpe()) as f:
        lines = f.read().decode("utf-8").split("\n")
    # The same slice SimpleTokenizer uses: skip the header line, keep 49152 - 256 - 2 merges.
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    return CLIPTokenizer(vocab=vocab, merges=merges)
