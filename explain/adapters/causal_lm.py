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

from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..explanation import InputRecord, ModelInfo, Target
from ..runner import Runner
from .attention_impl import eager_attention
from .base import OUTPUTS, Adapter, AttentionView, Example, GradientView, PerturbationView, contiguous_linkage, transform
from .generation import (
    Context,
    Generation,
    PrefixScorer,
    Units,
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

BASELINES = ("zero", "eos", "pad")
MASKS = ("drop", "pad", "eos", "unk")
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
    def prepare(
        self,
        raw: Any,
        index: int,
        max_length: int | None = None,
        max_new_tokens: int | None = 8,
        continuation: str | None = None,
        **_: Any,
    ) -> Example:
        """Tokenise a prompt, generate (or take) its continuation, and score it in one forward."""
        prompt, given = _read_input(raw, index, continuation)
        limits = [x for x in (max_length, self.info.max_length) if x]
        limit = min(limits) if limits else None
        raw_tok = tokenize(self.tokenizer, prompt, None)
        prompt_tok = strip_trailing_special(raw_tok)  # a prompt must not end in an end-of-text mark
        added = len(raw_tok.ids) - len(prompt_tok.ids)
        if not prompt_tok.word_tokens:
            raise InputError(f"input {index}: the prompt has no tokens besides special tokens")
        n_prompt = len(prompt_tok.ids)
        if limit is not None and n_prompt >= limit:
            raise InputError(
                f"input {index}: the prompt has {n_prompt} tokens and the model maximum is {limit} "
                "for prompt and continuation together: shorten the prompt"
            )
        note = None
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
                note = f"generated {room} of {max_new_tokens} tokens: the model maximum is {limit} tokens"
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

    def units(self, gen: Generation, length: int, granularity: str) -> Units:
        """Return the features of the first `length` tokens: words (cut at the end) or tokens."""
        return context_units(self.tokenizer, gen, length, granularity)

    # ---- views --------------------------------------------------------------------------
    def gradient_view(
        self,
        example: Example,
        target: Target,
        baseline: str | None = None,
        granularity: str = "word",
        output: str | None = None,
        **_: Any,
    ) -> GradientView:
        """Return the context's word embeddings, a zero/eos/pad baseline and the target's forward."""
        gen: Generation = example.state
        ctx = self.context(gen, target)
        output = _check_output(output)
        baseline = baseline or self.default_baseline()
        if baseline not in BASELINES:
            raise InputError(f"unknown baseline {baseline!r} for a causal LM: use one of {', '.join(BASELINES)}")
        emb = self.model.get_input_embeddings()
        ids = torch.tensor([gen.ids], device=self.device)
        special = torch.tensor([gen.tok.special[: ctx.length]], device=self.device)
        with torch.no_grad():
            inputs = emb(ids[:, : ctx.length]).detach()  # (1, T, D) the context
            fixed = emb(ids[:, ctx.length : ctx.length + ctx.need - 1]).detach()  # (1, need-1, D) not attributed
            if baseline == "zero":
                base = torch.where(special.unsqueeze(-1), inputs, torch.zeros_like(inputs))
            else:
                fill = self._fill_id(baseline, "baseline 'zero'")
                base_ids = torch.where(special, ids[:, : ctx.length], torch.full_like(ids[:, : ctx.length], fill))
                base = emb(base_ids).detach()
        answer = torch.tensor(gen.continuation[ctx.step : ctx.step + ctx.need], device=self.device)

        def forward(x: torch.Tensor) -> torch.Tensor:
            self.runner.count(x.shape[0])
            full = torch.cat([x, fixed.expand(x.shape[0], -1, -1).to(x.dtype)], dim=1) if ctx.need > 1 else x
            logits = self.scorer.embeds_logits(full, ctx.need)  # (B, need, V)
            values = transform(logits, "log-probability" if output == "probability" else output)
            picked = values.gather(-1, answer.view(1, -1, 1).expand(x.shape[0], -1, 1)).squeeze(-1).sum(-1)
            return picked.exp() if output == "probability" else picked

        units = self.units(gen, ctx.length, granularity)

        def reduce(attr: torch.Tensor) -> np.ndarray:
            per_token = attr.detach().float().sum(-1)[0].cpu().numpy()  # (T,)
            return np.asarray([per_token[list(t)].sum() for t in units.tokens], dtype=np.float32)

        return GradientView(
            inputs=inputs,
            baselines=base,
            forward=forward,
            reduce=reduce,
            features=units.names,
            granularity=units.granularity,
            baseline=baseline,
            output=output,
            extras=_extras(gen, units),
        )

    def default_baseline(self) -> str:
        """Return the IG baseline used when none is asked for: "eos" where there is one, else "zero".

        GPT-2 has no pad token; its end-of-text embedding is the model's own "no text". Zero
        embeddings are off the model's input manifold and, in models without absolute position
        embeddings (Llama), RMSNorm maps any small multiple of zero to the same direction, so
        the IG path's change piles up next to the baseline and 50 steps miss it.
        """
        return "eos" if self.token_ids.get("eos") is not None else "zero"

    def perturbation_view(
        self,
        example: Example,
        target: Target,
        mask: str | None = None,
        granularity: str = "word",
        output: str | None = None,
        **_: Any,
    ) -> PerturbationView:
        """Return the context's words, removed by dropping them (default) or a pad/eos/unk fill."""
        gen: Generation = example.state
        ctx = self.context(gen, target)
        output = _check_output(output)
        mask = mask or "drop"  # causal LMs have no mask token; a dropped word is simply absent
        if mask not in MASKS:
            raise InputError(f"unknown mask {mask!r} for a causal LM: use one of {', '.join(MASKS)}")
        fill = None if mask == "drop" else self._fill_id(mask, "mask 'drop'")
        units = self.units(gen, ctx.length, granularity)
        ids = np.asarray(gen.ids[: ctx.length])
        unit_of_pos = np.full(ctx.length, -1)
        for u, positions in enumerate(units.tokens):
            unit_of_pos[list(positions)] = u

        def evaluate(keep: np.ndarray) -> np.ndarray:
            keep = np.asarray(keep, dtype=bool).reshape(-1, len(units.names))
            kept = (unit_of_pos < 0)[None, :] | keep[:, np.maximum(unit_of_pos, 0)]  # (B, T)
            if fill is None:
                heads = [self.scorer.head(ids[k]) for k in kept]
            else:
                heads = [self.scorer.head(np.where(k, ids, fill)) for k in kept]
            entries = self.scorer.entries(gen, heads, ctx.step, ctx.need)
            return output_values(gen, ctx, entries, output)

        return PerturbationView(
            features=units.names,
            evaluate=evaluate,
            clustering=contiguous_linkage(len(units.names)),
            expand=lambda values: np.asarray(values, dtype=np.float32),
            granularity=units.granularity,
            mask=mask,
            output=output,
            sampling="lime-text",
            extras=_extras(gen, units),
        )

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
            query=ctx.length - 1,  # the row that predicts the target (whole continuation: its first token)
            tokens=gen.tok.tokens,
            features=units.names,
            feature_tokens=units.tokens,
            granularity=units.granularity,
        )

    def _fill_id(self, name: str, instead: str) -> int:
        """Return the id of the tokenizer's `name` token; raise InputError naming `instead` if it has none."""
        value = self.token_ids.get(name)
        if value is None:
            raise InputError(f"the tokenizer has no {name} token to fill removed words with: use {instead}")
        return value


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


def _extras(gen: Generation, units: Units) -> dict[str, Any]:
    """The sub-word tokens behind each feature, for reports and the word/token views."""
    return {"feature_tokens": [[gen.tok.tokens[t] for t in ts] for ts in units.tokens]}
