"""Readable names for tokens that stand for bytes, not text.

Byte-level BPE vocabularies (GPT-2, RoBERTa, Llama 3, ...) spell every byte as a printable
character, so a token of a non-ASCII letter reads as mojibake ("Ã©" for "é") and a piece of a
character (one byte of an emoji) as a lone symbol ("ð"). SentencePiece's byte fallback spells
such a byte "<0xF0>". Decoding one token alone gives U+FFFD for a partial character. Here a
token's name is its text where it is whole text, and "<0xNN>" for each byte of a partial
character, as SentencePiece writes it: the ASCII tokens (and their "Ġ" space marker) are
left as the vocabulary spells them.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

REPLACEMENT = "\ufffd"


@functools.lru_cache(maxsize=1)
def _byte_of() -> dict[str, int]:
    """Return GPT-2's printable character -> byte table (the inverse of its bytes_to_unicode).

    Written out rather than imported from transformers.convert_slow_tokenizer, whose import
    took 1.3 s here, in every process that tokenises; a test checks the two tables are equal."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = list(printable), 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def byte_level(tokenizer: Any) -> bool:
    """Return True when the tokenizer spells bytes as characters (a ByteLevel decoder)."""
    decoder = getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)
    return "ByteLevel" in repr(decoder) or hasattr(tokenizer, "byte_decoder")


def _bytes_text(data: bytes) -> str:
    """Return UTF-8 `data` as text, each byte of a partial or invalid character as <0xNN>."""
    text = data.decode("utf-8", errors="surrogateescape")
    return "".join(f"<0x{ord(c) - 0xDC00:02X}>" if 0xDC80 <= ord(c) <= 0xDCFF else c for c in text)


def readable_tokens(tokenizer: Any, tokens: Sequence[str | None]) -> list[str]:
    """Return the tokens' names: a byte-level token that is not plain ASCII as its text (partial
    characters as <0xNN> bytes; a leading space kept as the "Ġ" marker), every other one as is."""
    if not byte_level(tokenizer):
        return [t or "" for t in tokens]
    table = _byte_of()
    out = []
    for t in tokens:
        t = t or ""
        if not t or any(c not in table for c in t):  # a special or added token: its own spelling
            out.append(t)
            continue
        data = bytes(table[c] for c in t)
        if data.isascii():
            out.append(t)
            continue
        text = _bytes_text(data)
        out.append("Ġ" + text[1:] if text.startswith(" ") else text)
    return out


def token_label(tokenizer: Any, token_id: int) -> str:
    """Return one token's text as it reads in place (a leading space kept): its decoding when
    that is whole text, else its readable name (<0xNN> for the bytes of a partial character)."""
    text = tokenizer.decode([int(token_id)])
    if text and REPLACEMENT not in text:
        return text
    [raw] = tokenizer.convert_ids_to_tokens([int(token_id)]) or [""]
    [name] = readable_tokens(tokenizer, [raw])
    return " " + name[1:] if byte_level(tokenizer) and name.startswith("Ġ") else (name or text)
