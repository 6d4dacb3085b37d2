"""What a causal LM explains: a prompt, its continuation token by token, and cached scoring.

A prompt and its continuation (generated greedily or given) are one token sequence. Each
continuation token is a target whose context is everything before it; the whole continuation
is one more target whose context is the prompt. Perturbed contexts are scored by forwarding
the perturbed context *followed by the rest of the continuation*: one forward gives the
log-probability of every later continuation token at once, and a prefix cache (one per input)
hands those values to the later steps, the whole-continuation target and the other methods.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import InputError, TargetError
from ..explanation import Target
from ..runner import Runner
from .words import _SPACE_MARKERS, Tokenized, tokenize

STEP_WORDS = ("steps", "tokens")  # every continuation token, without the whole continuation
WHOLE_WORDS = ("sum", "continuation", "whole")  # the whole continuation only
ALL_WORDS = ("all",)


@dataclass
class Generation:
    """A prompt and its continuation as one token sequence, with word grouping and log-probs."""

    tok: Tokenized  # the whole sequence (prompt + continuation); words span both
    n_prompt: int  # prompt tokens, special ones included
    labels: tuple[str, ...]  # each continuation token's text as decoded in place (" meow")
    text: str  # the continuation's text
    logprobs: np.ndarray  # (n,) log p(token_k | everything before it), from one full forward
    cache: dict[tuple[int, ...], np.ndarray] = field(default_factory=dict, repr=False)
    columns: dict[int, int] = field(default_factory=dict)  # continuation vocab id -> cached column

    @property
    def ids(self) -> tuple[int, ...]:
        """Return the token ids of the whole sequence."""
        return self.tok.ids

    @property
    def continuation(self) -> tuple[int, ...]:
        """Return the continuation's token ids."""
        return self.tok.ids[self.n_prompt :]


@dataclass(frozen=True)
class Context:
    """What one target is explained from: its context length, first step and steps scored."""

    length: int  # tokens of context (positions 0..length-1)
    step: int  # first continuation step scored
    need: int  # continuation steps summed (1 for a token, all of them for the whole continuation)


@dataclass(frozen=True)
class Units:
    """The features of a context: names and the token positions of each."""

    names: tuple[str, ...]
    tokens: tuple[tuple[int, ...], ...]
    granularity: str


def target_context(gen: Generation, target: Target) -> Context:
    """Return the context of a target of `gen`; raise TargetError for a target of another input."""
    n = len(gen.continuation)
    if target.position is None and target.index == -1:
        return Context(length=gen.n_prompt, step=0, need=n)
    k = (target.position if target.position is not None else -1) - gen.n_prompt
    if not 0 <= k < n or gen.continuation[k] != target.index:
        raise TargetError(f"target {target.label!r} at position {target.position} is not a token of this continuation")
    return Context(length=gen.n_prompt + k, step=k, need=1)


def context_units(tokenizer: Any, gen: Generation, length: int, granularity: str) -> Units:
    """Return the features of the first `length` tokens: words (cut at the end) or non-special tokens."""
    tok = gen.tok
    if granularity == "token":
        pos = tuple(t for t in range(length) if not tok.special[t])
        return Units(tuple(tok.tokens[t] for t in pos), tuple((t,) for t in pos), "token")
    if granularity != "word":
        raise InputError(f"unknown granularity {granularity!r}: use word or token")
    names, groups = [], []
    for w, toks in enumerate(tok.word_tokens):
        inside = tuple(t for t in toks if t < length)
        if not inside:
            continue
        if len(inside) == len(toks):
            names.append(tok.words[w])
        else:  # a word the target token itself continues: only its pieces so far are context
            piece = tokenizer.decode([tok.ids[t] for t in inside]).strip()
            names.append(piece or "".join(tok.tokens[t] for t in inside))
        groups.append(inside)
    return Units(tuple(names), tuple(groups), "word")


def output_values(gen: Generation, ctx: Context, entries: np.ndarray, output: str) -> np.ndarray:
    """Return (B,) target outputs from (B, need, K+1) scored entries (see PrefixScorer.entries)."""
    cols = [gen.columns[i] for i in gen.continuation[ctx.step : ctx.step + ctx.need]]
    logits = entries[:, np.arange(ctx.need), cols].astype(np.float64)  # (B, need)
    if output == "logit":
        return logits.sum(-1)  # whole continuation: the sum of its tokens' logits
    logp = (logits - entries[:, :, -1]).sum(-1)
    return np.exp(logp) if output == "probability" else logp


def strip_trailing_special(tok: Tokenized, count: int | None = None) -> Tokenized:
    """Return `tok` without its trailing special tokens (all of them, or the last `count`)."""
    n = len(tok.ids)
    while n > 0 and tok.special[n - 1] and (count is None or len(tok.ids) - n < count):
        n -= 1
    if n == len(tok.ids):
        return tok
    return Tokenized(
        ids=tok.ids[:n],
        tokens=tok.tokens[:n],
        special=tok.special[:n],
        word_of_token=tok.word_of_token[:n],
        words=tok.words,
        word_tokens=tok.word_tokens,
        truncated_from=tok.truncated_from,
    )


def continuation_ids(tokenizer: Any, prompt: str, prompt_tok: Tokenized, text: str, added: int) -> list[int]:
    """Return the token ids of a given continuation, as the prompt + continuation text tokenises.

    `added` is how many special tokens the tokenizer appends to any text (e.g. an end-of-text
    mark): those are dropped, while special tokens written in the text itself are kept.
    """
    full = strip_trailing_special(tokenize(tokenizer, prompt + text, None), added)
    n = len(prompt_tok.ids)
    if full.ids[:n] == prompt_tok.ids:
        return list(full.ids[n:])
    # The prompt's last piece merges with the continuation (e.g. "cap" + "ital"): keep the
    # prompt's own tokens, which the model saw, and tokenise the continuation on its own.
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def decoded_labels(tokenizer: Any, ids: Sequence[int], start: int) -> tuple[list[str], str]:
    """Return each token's text from `start` on as decoded in place (with its space), and their text."""
    texts = [tokenizer.decode(list(ids[:i])) for i in range(start, len(ids) + 1)]
    labels = []
    for k, i in enumerate(range(start, len(ids))):
        before, after = texts[k], texts[k + 1]
        # SentencePiece decoders drop a token's leading space when decoded alone; the difference
        # of two prefixes keeps it. Partial UTF-8 bytes break the prefix property: decode alone.
        labels.append(after[len(before) :] if after.startswith(before) else tokenizer.decode([ids[i]]))
    whole = texts[-1][len(texts[0]) :] if texts[-1].startswith(texts[0]) else tokenizer.decode(list(ids[start:]))
    return labels, whole


def group_sequence(
    tokenizer: Any, prompt: str, prompt_tok: Tokenized, cont: Sequence[int], labels: Sequence[str], text: str, added: int
) -> Tokenized:
    """Return the Tokenized whole sequence, its words grouped across prompt and continuation."""
    ids = tuple(prompt_tok.ids) + tuple(cont)
    full = strip_trailing_special(tokenize(tokenizer, prompt + text, None), added)
    if full.ids == ids:  # the text re-tokenises to the same ids: use its offset-based words
        return full
    # Otherwise extend the prompt's words with the continuation's pieces: a piece starts a new
    # word at a space marker or a leading blank, and otherwise continues the word before it.
    special_ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    tokens = list(prompt_tok.tokens) + list(tokenizer.convert_ids_to_tokens(list(cont)))
    special = list(prompt_tok.special) + [i in special_ids for i in cont]
    groups = [list(w) for w in prompt_tok.word_tokens]
    # The continuation's first piece may continue the prompt's last word ("cap" + "ital").
    open_word = bool(groups) and groups[-1][-1] == len(prompt_tok.ids) - 1 and not prompt[-1:].isspace()
    blank_pending = False
    for k, t in enumerate(range(len(prompt_tok.ids), len(ids))):
        if special[t]:
            open_word = False
            continue
        label, piece = labels[k], tokens[t] or ""
        starts = piece.startswith(_SPACE_MARKERS) or label[:1].isspace()
        if not open_word or (starts and not blank_pending):
            groups.append([t])
        else:
            groups[-1].append(t)
        blank_pending = not label.strip()  # a lone space joins the word that follows it
        open_word = True
    if groups and len(groups) > 1 and not tokenizer.decode([ids[t] for t in groups[-1]]).strip():
        groups[-2].extend(groups.pop())
    word_of_token = [-1] * len(ids)
    for w, g in enumerate(groups):
        for t in g:
            word_of_token[t] = w
    words = tuple(_word_name(tokenizer, ids, prompt_tok, w, g) for w, g in enumerate(groups))
    return Tokenized(
        ids=ids,
        tokens=tuple(tokens),
        special=tuple(special),
        word_of_token=tuple(word_of_token),
        words=words,
        word_tokens=tuple(tuple(g) for g in groups),
    )


def _word_name(tokenizer: Any, ids: Sequence[int], prompt_tok: Tokenized, w: int, group: list[int]) -> str:
    if w < len(prompt_tok.word_tokens) and tuple(group) == prompt_tok.word_tokens[w]:
        return prompt_tok.words[w]  # untouched prompt word: keep its offset-based text
    return tokenizer.decode([ids[t] for t in group]).strip() or "".join(tokenizer.convert_ids_to_tokens([ids[t] for t in group]))


def check_spec(spec: Any) -> None:
    """Raise TargetError now for a target spec that can never name a step (wrong type)."""
    for s in spec if isinstance(spec, (list, tuple)) else [spec]:
        if s is None or isinstance(s, bool) or not isinstance(s, (int, np.integer, str)):
            raise TargetError(
                f"target {s!r} is not understood: for a causal LM give a step number (0 = first token, "
                "-1 = last), a generated token's text, 'steps', 'sum' (whole continuation) or 'all'"
            )


def select_steps(spec: Any, labels: Sequence[str]) -> list[int | None]:
    """Return the steps a target spec names, in order (None = the whole continuation)."""
    n = len(labels)
    if spec is None:
        return [*range(n), None]
    check_spec(spec)
    chosen: list[int | None] = []
    for s in spec if isinstance(spec, (list, tuple)) else [spec]:
        for step in _one_spec(s, labels):
            if step not in chosen:
                chosen.append(step)
    return chosen


def _one_spec(s: int | str, labels: Sequence[str]) -> list[int | None]:
    n = len(labels)
    text = str(s).strip()
    if isinstance(s, (int, np.integer)) or text.lstrip("-").isdigit():
        k = int(text)
        if -n <= k < n:
            return [k % n]
        raise TargetError(f"target step {k} is out of range: the continuation has {n} tokens (steps 0..{n - 1} or -{n}..-1)")
    low = text.lower()
    if low in ALL_WORDS:
        return [*range(n), None]
    if low in STEP_WORDS:
        return list(range(n))
    if low in WHOLE_WORDS:
        return [None]
    found = [k for k, label in enumerate(labels) if label == str(s) or label.strip() == text]
    if found:
        return list(found)
    shown = ", ".join(repr(x) for x in labels[:20]) + (" ..." if n > 20 else "")
    raise TargetError(
        f"unknown target {text!r}: no continuation token has that text (tokens: {shown}); "
        "use a step number, a token's text, 'steps', 'sum' or 'all'"
    )


class PrefixScorer:
    """Scores token rows followed by a continuation tail, batched, left-padded and cached."""

    def __init__(self, model: torch.nn.Module, runner: Runner, pad_id: int, start_id: int | None) -> None:
        self.model = model
        self.runner = runner
        self.pad_id = pad_id
        self.start_id = start_id  # stands in for an empty context (every word dropped)
        params = inspect.signature(model.forward).parameters
        # Only the answering positions' logits are needed (renamed across transformers versions).
        self.keep_arg = next((a for a in ("logits_to_keep", "num_logits_to_keep") if a in params), None)
        self.positions = "position_ids" in params

    def head(self, ids: Sequence[int] | np.ndarray) -> tuple[int, ...]:
        """Return a context as scored: an empty one becomes the start-of-text token."""
        if len(ids) == 0 and self.start_id is not None:
            return (self.start_id,)
        return tuple(int(i) for i in ids)

    def entries(self, gen: Generation, heads: Sequence[tuple[int, ...]], step: int, need: int) -> np.ndarray:
        """Return (B, need, K+1) logits at the continuation's K distinct ids + logsumexp.

        Entry j of head h is the next-token distribution after h + continuation[step:step+j].
        Missing heads are forwarded with the whole remaining continuation, which fills the
        cache for every later step at the cost of a few more tokens per row.
        """
        cont = gen.continuation
        tail = tuple(cont[step:-1])  # the last token predicts nothing we explain
        width = len(cont) - step
        out = np.empty((len(heads), need, len(gen.columns) + 1), dtype=np.float32)
        missing: dict[tuple[int, ...], list[int]] = {}
        for b, h in enumerate(heads):
            hit = [gen.cache.get(h + tail[:j]) for j in range(need)]
            if all(v is not None for v in hit):
                out[b] = np.stack(hit)  # type: ignore[arg-type]
            else:
                missing.setdefault(h, []).append(b)
        if missing:
            rows = [h + tail for h in missing]
            cols = torch.tensor(sorted(gen.columns, key=gen.columns.__getitem__), device=self.runner.device)
            vals = self.runner.map(rows, lambda batch: self.forward(batch, width, cols), key=len).numpy()
            for (h, where), v in zip(missing.items(), vals):
                for j in range(width):
                    gen.cache[h + tail[:j]] = v[j]
                out[where] = v[:need]
        return out

    def forward(self, rows: Sequence[Sequence[int]], width: int, cols: torch.Tensor) -> torch.Tensor:
        """Return (B, width, K+1): the last `width` positions' logits at `cols` and logsumexp."""
        logits = self.logits(rows, width).float()  # (B, width, V)
        lse = torch.logsumexp(logits, dim=-1, keepdim=True)
        return torch.cat([logits[..., cols], lse], dim=-1)

    def logits(self, rows: Sequence[Sequence[int]], width: int) -> torch.Tensor:
        """Return (B, width, V) logits of the last `width` positions of left-padded rows."""
        longest = max(len(r) for r in rows)
        ids = torch.full((len(rows), longest), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, longest - len(r) :] = torch.as_tensor(list(r), dtype=torch.long)
            mask[i, longest - len(r) :] = 1
        # Left padding puts every row's answers in the same last positions, so only those
        # logits are computed; position ids restart at each row's first real token, and the
        # mask hides the padding, so a row's answer does not depend on its batch.
        kwargs: dict[str, Any] = {"attention_mask": mask.to(self.runner.device)}
        if self.positions:
            kwargs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0).to(self.runner.device)
        if self.keep_arg:
            kwargs[self.keep_arg] = width
        out = self.model(input_ids=ids.to(self.runner.device), **kwargs)
        return out.logits[:, -width:]

    def embeds_logits(self, embeds: torch.Tensor, width: int) -> torch.Tensor:
        """Return (B, width, V) logits of the last `width` positions for unpadded input embeddings."""
        kwargs: dict[str, Any] = {self.keep_arg: width} if self.keep_arg else {}
        return self.model(inputs_embeds=embeds, **kwargs).logits[:, -width:]


def greedy(model: torch.nn.Module, runner: Runner, ids: Sequence[int], n: int, stop: set[int]) -> list[int]:
    """Return up to n greedily generated token ids (stopping after an end-of-text id), KV-cached."""
    params = inspect.signature(model.forward).parameters
    cache_arg = next((a for a in ("cache", "past_key_values") if a in params), None)  # renamed in transformers 5.x
    new: list[int] = []
    x = torch.tensor([list(ids)], dtype=torch.long, device=runner.device)
    past = None
    with runner.context():
        for _ in range(n):
            kwargs: dict[str, Any] = {"use_cache": cache_arg is not None}
            if past is not None:
                kwargs[cache_arg] = past  # type: ignore[index]
            out = model(input_ids=x, **kwargs)
            runner.count(1)
            nxt = int(out.logits[0, -1].argmax())
            new.append(nxt)
            if nxt in stop:
                break
            past = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
            step = torch.tensor([[nxt]], dtype=torch.long, device=runner.device)
            x = step if past is not None else torch.cat([x, step], dim=1)  # no cache: full re-forward
    return new
