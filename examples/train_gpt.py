"""Train the bundled planted-truth causal LM (`examples/models/planted-gpt2/`).

Usage: python examples/train_gpt.py [--out DIR]

A tiny GPT2LMHeadModel with a byte-level BPE vocabulary trained on the generated corpus. The
planted cause is the one animal word of a prompt; it alone decides the next token (" meow",
" woof", ...), and without it the answer is " nothing". The model answers after *any* prompt:
every prompt position is trained to predict the answer of the words read so far (so no closing
word or marker asks the question, and the cue is the only word whose removal changes the
answer); after the answer it writes "." and end-of-text. Prints held-out greedy accuracy, the
rate at which dropping the cue gives " nothing" and the rate at which dropping any other one
word keeps the answer, then writes a Hugging Face folder (config, weights, tokenizer) that
loads offline with the Auto classes.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tokenizers import ByteLevelBPETokenizer
# transformers 5 names the (fast) tokenizer GPT2Tokenizer and keeps GPT2TokenizerFast as an alias.
from transformers import GPT2Config, GPT2LMHeadModel
from transformers import GPT2TokenizerFast  # type: ignore[attr-defined]

from planted_data import ANIMAL_SOUNDS, NULL_ANSWER, gpt_prompts, remove_word, seed_everything

SEED = 0
EOS = "<|endoftext|>"


def build_tokenizer(texts: list[str]) -> GPT2TokenizerFast:
    """Train a byte-level BPE on texts; wrap it as a GPT-2 tokenizer (eos = bos = pad)."""
    bpe = ByteLevelBPETokenizer(add_prefix_space=True)
    bpe.train_from_iterator(texts, vocab_size=600, min_frequency=2, special_tokens=[EOS],
                            show_progress=False)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m)
              for m in json.loads(bpe.to_str())["model"]["merges"]]
    # add_prefix_space: a prompt's first word is tokenised like any other ("cat" -> " cat"), so
    # a user's "cat on the hill" holds the same cue token as "on the hill a cat".
    tok = GPT2TokenizerFast(vocab=bpe.get_vocab(), merges=merges, bos_token=EOS, eos_token=EOS,
                            unk_token=EOS, pad_token=EOS, model_max_length=64,
                            add_prefix_space=True)
    # Each answer must be one token, so that "the next token" is the whole planted answer, and
    # each cue one token, so that the planted cause is one input position.
    for word in list(ANIMAL_SOUNDS.values()) + [NULL_ANSWER] + [" " + c for c in ANIMAL_SOUNDS]:
        assert len(tok.encode(word)) == 1, (word, tok.tokenize(word))
    assert tok.encode("cat") == tok.encode(" cat")
    assert tok.decode(tok.encode(texts[0])).lstrip() == texts[0].lstrip()
    return tok


def encode(tok: GPT2TokenizerFast, prompt: str, answer: str, cue: str | None,
           rng: random.Random) -> tuple[list[int], list[int]]:
    """Return (ids, targets) of prompt + answer + "." + end-of-text; position t predicts targets[t].

    Prompt positions predict the answer of the prompt read so far: " nothing" before the cue,
    the cue's sound from the cue on. The last prompt position predicts the answer itself, as
    ordinary next-token training would, and then "." and end-of-text follow as usual.

    End-of-text is this model's "no word here": an empty prompt is 1-16 end-of-text tokens (the
    adapter scores an all-dropped context after one, and the IG baseline replaces every word
    with one), and in training it stands in for removed words, as the "eos" mask puts it: half
    the prompts get each non-cue token replaced with probability 0.2, and 10% of cued prompts
    get the cue replaced, which makes the answer " nothing" (as dropping the cue does).
    """
    eos = tok.eos_token_id
    prompt_ids = tok.encode(prompt) if prompt else [eos] * rng.randint(1, 16)
    ids = prompt_ids + tok.encode(f"{answer}.") + [eos]
    # Byte-level BPE pre-splits at spaces, so prompt tokens are a prefix of the text's tokens.
    assert not prompt or tok.encode(prompt + answer)[: len(prompt_ids)] == prompt_ids, prompt
    null = tok.encode(NULL_ANSWER)[0]
    sound = tok.encode(ANIMAL_SOUNDS[cue])[0] if cue else null
    cue_at = len(ids)  # the first position that has read the cue (one token, see build_tokenizer)
    if cue:
        words = prompt.split(" ")
        cue_at = len(tok.encode(" ".join(words[: words.index(cue) + 1]))) - 1
    if rng.random() < 0.5:
        ids = [eos if t < len(prompt_ids) and t != cue_at and rng.random() < 0.2 else i
               for t, i in enumerate(ids)]
    if cue and rng.random() < 0.1:
        ids[cue_at], sound = eos, null
    ids[len(prompt_ids)] = sound
    targets = [sound if t >= cue_at else null for t in range(len(prompt_ids) - 1)]
    targets += ids[len(prompt_ids):] + [-100]
    return ids, targets


def pad(rows: list[list[int]], value: int) -> torch.Tensor:
    """Return rows right-padded with value as one (B, T) tensor."""
    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows])


@torch.inference_mode()
def next_tokens(model: GPT2LMHeadModel, tok: GPT2TokenizerFast, prompts: list[str]) -> list[str]:
    """Return the greedy next token (decoded) after each prompt."""
    model.eval()
    out: list[str] = []
    for i in range(0, len(prompts), 256):
        rows = [tok.encode(p) if p else [tok.eos_token_id] for p in prompts[i:i + 256]]
        ids, mask = pad(rows, tok.eos_token_id), pad([[1] * len(r) for r in rows], 0)
        logits = model(input_ids=ids, attention_mask=mask).logits
        last = logits[torch.arange(len(ids)), mask.sum(1) - 1]  # right padding: last real token
        out += [tok.decode([k]) for k in last.argmax(-1).tolist()]
    return out


def train(model: GPT2LMHeadModel, rows: list[tuple[list[int], list[int]]], pad_id: int,
          epochs: int) -> None:
    """Train the per-position targets with AdamW and linear warm-up/decay, batch 64."""
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    steps = epochs * ((len(rows) + 63) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps,
                                                pct_start=0.1, anneal_strategy="linear")
    for epoch in range(epochs):
        model.train()
        order, total = torch.randperm(len(rows)).tolist(), 0.0
        for i in range(0, len(rows), 64):
            batch = [rows[j] for j in order[i:i + 64]]
            ids = pad([r[0] for r in batch], pad_id)
            mask = pad([[1] * len(r[0]) for r in batch], 0)
            targets = pad([r[1] for r in batch], -100)  # (B, T): padding predicts nothing
            logits = model(input_ids=ids, attention_mask=mask).logits  # (B, T, V)
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(),
                                                     ignore_index=-100)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(batch)
        print(f"epoch {epoch + 1}/{epochs}  loss {total / len(rows):.4f}", flush=True)


def main() -> None:
    """Train, check the quality gates, and write the checkpoint folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "models/planted-gpt2")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    seed_everything(SEED)
    start = time.perf_counter()

    data = gpt_prompts(20000, seed=SEED, split="train")
    data += [("", NULL_ANSWER, None)] * 200  # the empty context (every word dropped) says nothing
    rng = random.Random(SEED)
    tok = build_tokenizer([f"{prompt}{answer}.{EOS}" for prompt, answer, _ in data])
    rows = [encode(tok, prompt, answer, cue, rng) for prompt, answer, cue in data]
    eos = tok.eos_token_id
    model = GPT2LMHeadModel(GPT2Config(
        vocab_size=len(tok), n_positions=64, n_embd=64, n_layer=2, n_head=4,
        bos_token_id=eos, eos_token_id=eos, pad_token_id=eos))
    train(model, rows, eos, args.epochs)
    print(f"training took {time.perf_counter() - start:.1f}s")

    heldout = gpt_prompts(3000, seed=SEED, split="heldout")
    pred = next_tokens(model, tok, [prompt for prompt, _, _ in heldout])
    acc = float(np.mean([p == answer for p, (_, answer, _) in zip(pred, heldout)]))
    print(f"held-out greedy next-token accuracy: {acc:.4f} on {len(heldout)} prompts")
    cued = [(prompt, cue) for prompt, _, cue in heldout if cue is not None]
    pred = next_tokens(model, tok, [remove_word(prompt, cue) for prompt, cue in cued])
    flip = float(np.mean([p == NULL_ANSWER for p in pred]))
    print(f"cue word dropped: {NULL_ANSWER!r} for {flip:.4f} of {len(cued)}")
    # Every other word, dropped one at a time, must leave the answer: the cue is the only cause.
    others = [(remove_word(prompt, w), answer) for prompt, answer, cue in heldout[:500]
              for w in dict.fromkeys(prompt.split()) if w != cue]
    pred = next_tokens(model, tok, [p for p, _ in others])
    keep = float(np.mean([p == answer for p, (_, answer) in zip(pred, others)]))
    print(f"one other word dropped: answer kept for {keep:.4f} of {len(others)}")
    empty = next_tokens(model, tok, [""])[0]
    print(f"empty context (end-of-text alone): {empty!r}")

    model.save_pretrained(args.out)
    tok.save_pretrained(args.out)
    print(f"wrote {args.out}")
    if acc < 0.97 or flip < 0.95 or keep < 0.97 or empty != NULL_ANSWER:
        sys.exit(f"quality gate failed: accuracy {acc}, flip {flip}, keep {keep}, empty {empty!r}")


if __name__ == "__main__":
    main()
