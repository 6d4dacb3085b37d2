"""Adapter for Hugging Face causal LMs (GPT-2, Llama, ...): explain generated text token by token.

An input is a prompt (or {"prompt": ..., "continuation": ...}). Its continuation is greedy
generation of `max_new_tokens` tokens, or the text given. Targets, in order: one per
continuation token (its output is the LOG-PROBABILITY of that token given everything before
it), then the whole continuation (the sum of those log-probabilities). A target's features are
the words of its context: the prompt's words plus the words generated before the token (for the
whole continuation, the prompt's words; the continuation is appended but not attributed).

Target specs (`explain(..., target=...)`): None or "all" = every token, then the whole
continuation; "steps" = every token; "sum" (or "continuation", "whole") = the whole
continuation; an int k (or "k") = step k, 0-based, negative from the end; any other text = the
steps whose token has that text (e.g. "meow"); a list combines these in order.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch

from ..errors import InputError, MethodError
from ..results.explanation import InputRecord, ModelInfo, Target
from ..execution.runner import Runner
from .attention_impl import eager_attention
from . import removal, textview
from .base import OUTPUTS, Adapter, AttentionView, Example, GradientView, PerturbationView, check_gradient, transform
from .generation import (
    Context,
    Generation,
    PrefixScorer,
    check_spec,
    context_units,
    continuation_ids,
    decoded_labels,
    greedy,
    group_sequence,
    output_values,
    select_steps,
    strip_trailing_special,
    target_context,
)
from .words import tokenize

# Removals in order of preference for the default (see default_baseline); "drop" needs no token.
REMOVALS = ("eos", "unk", "pad", "drop")
DEFAULT_OUTPUT = "log-probability"


class CausalLMAdapter(Adapter):
    """Prompts, greedy or forced continuations, and per-token views of a causal LM."""

    family = "causal-lm"

    def __init__(self, model: torch.nn.Module, tokenizer: Any, info: ModelInfo, runner: Runner) -> None:
        super().__init__(model, info, runner)
        self.tokenizer = tokenizer
        ids = {n: getattr(tokenizer, f"{n}_token_id", None) for n in ("eos", "bos", "pad", "unk")}
        self.token_ids: dict[str, int | None] = {k: (int(v) if v is not None else None) for k, v in ids.items()}
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        eos = {ids["eos"], *(gen_eos if isinstance(gen_eos, (list, tuple)) else [gen_eos])}
        self.stop_ids = {int(i) for i in eos if i is not None}
        start = ids["bos"] if ids["bos"] is not None else ids["eos"]
        pad = next((v for v in (ids["pad"], ids["eos"], ids["unk"]) if v is not None), 0)
        # An empty context (every word dropped) is scored after the start-of-text token, GPT-2's
        # own "no context" (<|endoftext|>); pad ids are only ever placed under the attention mask.
        self.scorer = PrefixScorer(model, runner, pad_id=int(pad), start_id=start)

    # ---- inputs -------------------------------------------------------------------------
    def _last_words(self, prompt: str, budget: int, index: int) -> tuple[str, Any, Any]:
        """Return (the prompt's shortest suffix of whole words that fits `budget` tokens, its raw and
        stripped Tokenized); the cut falls before a word, found by bisection over word starts."""
        starts = [m.start() for m in re.finditer(r"\S+", prompt)]

        def tokens(i: int) -> tuple[Any, Any]:
            raw = tokenize(self.tokenizer, prompt[starts[i]:], None)
            return raw, strip_trailing_special(raw)

        lo, hi = 1, len(starts) - 1  # the first start that fits lies in [lo, hi]
        if hi < lo or len(tokens(hi)[1].ids) > budget:
            raise InputError(f"input {index}: even the prompt's last word does not fit the model maximum with the continuation")
        while lo < hi:
            mid = (lo + hi) // 2
            if len(tokens(mid)[1].ids) <= budget:
                hi = mid
            else:
                lo = mid + 1
        raw, stripped = tokens(lo)
        return prompt[starts[lo]:], raw, stripped

    def prepare(
        self,
        raw: Any,
        index: int,
        max_length: int | None = None,
        max_new_tokens: int | None = 8,
        continuation: str | None = None,
        truncate: bool = True,
        **_: Any,
    ) -> Example:
        """Tokenise a prompt, generate (or take) its continuation, and score it in one forward.

        A prompt too long for the model maximum (with room for the continuation) loses whole
        words from its start when `truncate` (the words nearest the continuation are kept, as
        a language model's context window keeps them), with a note; else the input fails.
        """
        prompt, given = _read_input(raw, index, continuation)
        limits = [x for x in (max_length, self.info.max_length) if x]
        limit = min(limits) if limits else None
        raw_tok = tokenize(self.tokenizer, prompt, None)
        prompt_tok = strip_trailing_special(raw_tok)  # a prompt must not end in an end-of-text mark
        if not prompt_tok.word_tokens:
            raise InputError(f"input {index}: the prompt has no tokens besides special tokens")
        note = None
        if limit is not None and truncate:
            # a prompt that leaves room for some generation is kept whole (generation is shortened,
            # noted below); one that does not, or a given continuation that does not fit, is cut
            wanted = len(self.tokenizer(given, add_special_tokens=False)["input_ids"]) if given is not None else int(max_new_tokens or 8)
            budget = limit - wanted if limit - wanted >= 1 else limit - 1
            if len(prompt_tok.ids) > (budget if given is not None else limit - 1):
                before = len(prompt_tok.ids)
                prompt, raw_tok, prompt_tok = self._last_words(prompt, budget, index)
                note = f"truncated from {before} to {len(prompt_tok.ids)} prompt tokens (model maximum {limit}): its first words were cut"
        added = len(raw_tok.ids) - len(prompt_tok.ids)
        n_prompt = len(prompt_tok.ids)
        if limit is not None and n_prompt >= limit:
            raise InputError(
                f"input {index}: the prompt has {n_prompt} tokens and the model maximum is {limit} "
                "for prompt and continuation together: shorten the prompt"
            )
        if given is not None:
            cont = continuation_ids(self.tokenizer, prompt, prompt_tok, given, added)
            if not cont:
                raise InputError(f"input {index}: the continuation {given!r} has no tokens")
            if limit is not None and n_prompt + len(cont) > limit:
                raise InputError(
                    f"input {index}: prompt ({n_prompt}) + continuation ({len(cont)}) tokens exceed the model maximum of {limit}"
                )
        else:
            max_new_tokens = 8 if max_new_tokens is None else int(max_new_tokens)
            if max_new_tokens < 1:
                raise InputError(f"input {index}: max_new_tokens is {max_new_tokens}; generate at least 1 token")
            room = max_new_tokens if limit is None else min(max_new_tokens, limit - n_prompt)
            cont = greedy(self.model, self.runner, prompt_tok.ids, room, self.stop_ids)
            if room < max_new_tokens and len(cont) == room:
                short = f"generated {room} of {max_new_tokens} tokens: the model maximum is {limit} tokens"
                note = f"{note}; {short}" if note else short
        ids = list(prompt_tok.ids) + list(cont)
        labels, text = decoded_labels(self.tokenizer, ids, n_prompt)
        text = given if given is not None else text
        gen = Generation(
            tok=group_sequence(self.tokenizer, prompt, prompt_tok, cont, labels, text, added),
            n_prompt=n_prompt,
            labels=tuple(labels),
            text=text,
            logprobs=np.zeros(len(cont)),
            columns={i: c for c, i in enumerate(dict.fromkeys(cont))},
        )
        probs = self._score(gen)
        first = self.targets_of(gen)[0]
        record = InputRecord(index=index, kind="prompt", text=prompt, continuation=text, prediction=first, note=note)
        return Example(index=index, record=record, probs=probs, state=gen)

    def _score(self, gen: Generation) -> np.ndarray:
        """Fill gen's log-probs (and its cache) from one forward; return the first step's probabilities."""
        n = len(gen.continuation)
        rows = [gen.ids[:-1]]  # the last token predicts nothing explained
        logits = self.runner.map(rows, lambda b: self.scorer.logits(b, n), key=len)[0].double()  # (n, V)
        logp = torch.log_softmax(logits, dim=-1)
        cont = torch.tensor(gen.continuation)
        gen.logprobs = logp[torch.arange(n), cont].numpy()
        cols = torch.tensor(list(gen.columns))
        lse = torch.logsumexp(logits, dim=-1, keepdim=True)
        entries = torch.cat([logits[:, cols], lse], dim=-1).float().numpy()
        for j in range(n):  # the unperturbed prompt's entries: every method's "all kept" row
            gen.cache[tuple(gen.ids[: gen.n_prompt + j])] = entries[j]
        return logp[0].exp().float().numpy()

    # ---- targets ------------------------------------------------------------------------
    def targets_of(self, gen: Generation) -> list[Target]:
        """Return one Target per continuation token, then the whole continuation's."""
        out = [
            Target(index=int(i), label=gen.labels[k], probability=float(np.exp(gen.logprobs[k])), position=gen.n_prompt + k)
            for k, i in enumerate(gen.continuation)
        ]
        out.append(Target(index=-1, label=gen.text, probability=float(np.exp(gen.logprobs.sum())), position=None))
        return out

    def targets(self, example: Example, spec: Any = None) -> list[Target]:
        """Return the Targets a spec names (see the module docstring); all of them for None."""
        gen: Generation = example.state
        every = self.targets_of(gen)
        return [every[-1] if s is None else every[s] for s in select_steps(spec, gen.labels)]

    def check_target(self, spec: Any) -> None:
        """Raise TargetError now for a spec that names no step of any continuation."""
        if spec is not None:
            check_spec(spec)

    def context(self, gen: Generation, target: Target) -> Context:
        """Return the context of a target of this input; raise TargetError for a foreign one."""
        return target_context(gen, target)

    def units(self, gen: Generation, length: int, granularity: str) -> textview.Units:
        """Return the features of the first `length` tokens: words (cut at the end) or tokens."""
        return context_units(self.tokenizer, gen, length, granularity)

    # ---- removals -----------------------------------------------------------------------
    @property
    def baselines(self) -> tuple[str, ...]:
        """Return the removals this tokenizer allows: eos, unk, pad (each if it has the token), drop."""
        return tuple(r for r in REMOVALS if r == "drop" or self.token_ids.get(r) is not None)

    @property
    def default_baseline(self) -> str:
        """Return the removal every method uses when none is set: "eos" where the tokenizer has one.

        IG cannot drop words, so the one removal all methods can share must be a token. GPT-2's
        end-of-text token is its own "no text": every document it read started after one, and
        an all-dropped context is scored after it too, so a word replaced by it reads as a gap
        rather than as another word. The bundled model was trained with removed words replaced
        by it as well as dropped. Zero embeddings lie off the model's input manifold (and under
        RMSNorm, as in Llama, every small multiple of zero maps to one direction), so they are
        only ever asked for. Tokenizers without end-of-text fall back on unk, then pad, then drop
        (IG, which cannot drop, then uses zero embeddings).
        """
        return self.baselines[0]

    def check_baseline(self, name: str, gradient: bool = False) -> str:
        """Return `name` if this model can remove words that way (IG: `gradient`); else raise MethodError."""
        if name in REMOVALS and name != "drop" and self.token_ids.get(name) is None:
            instead = ", ".join([b for b in self.baselines if not (gradient and b == "drop")] + (["zero"] if gradient else []))
            raise MethodError(f"the tokenizer has no {name} token to fill removed words with: use {instead}")
        return removal.check(self.family, name, self.baselines, gradient=gradient)

    def resolve_baseline(self, options: dict[str, Any], gradient: bool) -> str:
        """Return the removal the view options ask for (`baseline`, or its old name `mask`), checked."""
        name, option = removal.requested(options)
        name = name or removal.default(self.baselines, gradient)  # IG without a fill token: zero
        if name in REMOVALS:
            self.check_baseline(name, gradient)
        return removal.check(self.family, name, self.baselines, gradient=gradient, option=option)

    def fill_id(self, name: str) -> int | None:
        """Return the token id removed words become under removal `name` (None: dropped, or IG's zero)."""
        return self.token_ids.get(name) if name in REMOVALS else None

    # ---- views --------------------------------------------------------------------------
    def gradient_view(
        self,
        example: Example,
        target: Target,
        granularity: str = "word",
        output: str | None = None,
        **options: Any,
    ) -> GradientView:
        """Return the context's word embeddings, the all-removed context's as baseline, and the target's forward."""
        gen: Generation = example.state
        ctx = self.context(gen, target)
        output = _check_output(output)
        name = self.resolve_baseline(options, gradient=True)
        emb = self.model.get_input_embeddings()
        ids = torch.tensor([gen.ids], device=self.device)
        special = torch.tensor([gen.tok.special[: ctx.length]], device=self.device)
        with torch.no_grad():
            inputs = emb(ids[:, : ctx.length]).detach()  # (1, T, D) the context
            fixed = emb(ids[:, ctx.length : ctx.length + ctx.need - 1]).detach()  # (1, need-1, D) not attributed
        base = textview.baseline_embeddings(emb, ids[:, : ctx.length], special, self.fill_id(name))
        answer = torch.tensor(gen.continuation[ctx.step : ctx.step + ctx.need], device=self.device)

        def forward(x: torch.Tensor) -> torch.Tensor:
            self.runner.count(x.shape[0])
            full = torch.cat([x, fixed.expand(x.shape[0], -1, -1).to(x.dtype)], dim=1) if ctx.need > 1 else x
            logits = check_gradient(self.scorer.embeds_logits(full, ctx.need), x, self.model)  # (B, need, V)
            values = transform(logits, "log-probability" if output == "probability" else output)
            picked = values.gather(-1, answer.view(1, -1, 1).expand(x.shape[0], -1, 1)).squeeze(-1).sum(-1)
            return picked.exp() if output == "probability" else picked

        units = self.units(gen, ctx.length, granularity)
        return textview.gradient_view(inputs, base, forward, units, gen.tok.tokens, name, output)

    def perturbation_view(
        self,
        example: Example,
        target: Target,
        granularity: str = "word",
        output: str | None = None,
        **options: Any,
    ) -> PerturbationView:
        """Return the context's words as features, removed the way `baseline` says (a fill token, or dropped)."""
        gen: Generation = example.state
        ctx = self.context(gen, target)
        output = _check_output(output)
        name = self.resolve_baseline(options, gradient=False)

        def score(rows: list[np.ndarray]) -> np.ndarray:
            entries = self.scorer.entries(gen, [self.scorer.head(r) for r in rows], ctx.step, ctx.need)
            return output_values(gen, ctx, entries, output)

        units = self.units(gen, ctx.length, granularity)
        return textview.perturbation_view(units, gen.ids[: ctx.length], gen.tok.tokens, name, self.fill_id(name), score, output)

    def attention_view(self, example: Example, target: Target, granularity: str = "word") -> AttentionView:
        """Return every layer's causal attention over the whole sequence, in the graph of the target's log-probability."""
        gen: Generation = example.state
        ctx = self.context(gen, target)
        ids = torch.tensor([gen.ids], device=self.device)
        with eager_attention(self.model), torch.enable_grad():
            out = self.model(input_ids=ids, attention_mask=torch.ones_like(ids), output_attentions=True)
        if not out.attentions or out.attentions[0] is None:
            raise InputError(f"{self.info.architecture} returned no attention weights")
        logp = torch.log_softmax(out.logits[0].float(), dim=-1)  # (T, V)
        pos = torch.arange(ctx.length - 1, ctx.length - 1 + ctx.need, device=self.device)
        answer = torch.tensor(gen.continuation[ctx.step : ctx.step + ctx.need], device=self.device)
        units = self.units(gen, ctx.length, granularity)
        return AttentionView(
            attentions=list(out.attentions),
            output=logp[pos, answer].sum(),
            # the first row that predicts the target; a whole continuation is predicted by every
            # row from here to its last token (answer_row.answer_rows), and the attention method uses them all
            query=ctx.length - 1,
            tokens=gen.tok.tokens,
            features=units.names,
            feature_tokens=units.tokens,
            granularity=units.granularity,
        )


def _read_input(raw: Any, index: int, continuation: str | None) -> tuple[str, str | None]:
    """Return (prompt, continuation or None) from a prompt string or a {"prompt", "continuation"} dict."""
    if isinstance(raw, dict):
        if not isinstance(raw.get("prompt"), str):
            raise InputError(f"input {index}: a causal LM input needs a 'prompt' text, got keys {sorted(raw)}")
        prompt, given = raw["prompt"], raw.get("continuation", continuation)
    elif isinstance(raw, str):
        prompt, given = raw, continuation
    else:
        raise InputError(f"input {index}: expected a prompt text or {{'prompt': ..., 'continuation': ...}}, got {type(raw).__name__}")
    if not prompt.strip():
        raise InputError(f"input {index}: the prompt is empty")
    if given is not None and (not isinstance(given, str) or not given):
        raise InputError(f"input {index}: the continuation must be a non-empty text, got {given!r}")
    return prompt, given


def _check_output(output: str | None) -> str:
    output = output or DEFAULT_OUTPUT
    if output not in OUTPUTS:
        raise InputError(f"unknown output {output!r}: use one of {', '.join(OUTPUTS)}")
    return output
