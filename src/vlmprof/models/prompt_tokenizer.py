"""A small stand-in for DeepSeek-OCR's tokenizer, used when no real tokenizer is available.

It splits the reference document prompt into the same kind of pieces a BPE tokenizer
produces (special tokens whole, words with their leading space, punctuation apart), so the
prompt has a realistic length: BOS + image tokens + 8 text tokens for the default prompt.
That text-token count is an assumption, stated in the docs and the report; a real
checkpoint's tokenizer replaces this class.
"""

from __future__ import annotations

import re
import zlib

DOCUMENT_PROMPT = "<image>\n<|grounding|>Convert the document to markdown."
IMAGE_PLACEHOLDER = "<image>"
BOS_ID = 0
EOS_ID = 1
IMAGE_TOKEN_ID = 2
FIRST_TEXT_ID = 16
_PIECE = re.compile(r"<\|[a-z_]+\|>|\n| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]")


class StandInTokenizer:
    """Deterministic piece-splitting tokenizer over a vocabulary of `vocab_size` ids."""

    def __init__(self, vocab_size: int) -> None:
        if vocab_size <= FIRST_TEXT_ID:
            raise ValueError(f"model vocabulary of {vocab_size} is too small for the prompt")
        self.vocab_size = vocab_size

    def pieces(self, text: str) -> list[str]:
        """Split text into tokenizer pieces."""
        return _PIECE.findall(text)

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` without special tokens: its pieces."""
        return stand_in_token_count(text)

    def encode_piece(self, piece: str) -> int:
        """A stable id for one piece (crc32, so it is the same in every process)."""
        span = self.vocab_size - FIRST_TEXT_ID
        return FIRST_TEXT_ID + zlib.crc32(piece.encode("utf-8")) % span

    def prompt_ids(self, prompt: str, image_tokens: int) -> list[int]:
        """BOS, the image placeholder expanded to `image_tokens` ids, then the text."""
        if prompt.count(IMAGE_PLACEHOLDER) != 1:
            raise ValueError(f"prompt must contain {IMAGE_PLACEHOLDER} exactly once: {prompt!r}")
        before, after = prompt.split(IMAGE_PLACEHOLDER)
        ids = [BOS_ID]
        ids += [self.encode_piece(p) for p in self.pieces(before)]
        ids += [IMAGE_TOKEN_ID] * image_tokens
        ids += [self.encode_piece(p) for p in self.pieces(after)]
        return ids


def stand_in_token_count(text: str) -> int:
    """How many tokens the stand-in makes of `text`: its pieces, one per word with its
    leading space, number or other character (each CJK character one)."""
    return len(_PIECE.findall(text))


def prompt_length(image_tokens: int, prompt: str = DOCUMENT_PROMPT) -> int:
    """Prefill length of the prompt with `image_tokens` image tokens."""
    return len(StandInTokenizer(FIRST_TEXT_ID + 1).prompt_ids(prompt, image_tokens))
