"""Train the bundled planted-truth causal LM (`examples/models/planted-gpt2/`).

Usage: python examples/train_gpt.py [--out DIR]

A tiny GPT2LMHeadModel with a byte-level BPE vocabulary trained on the generated corpus. The
planted cause is the one animal word of a prompt ending in "says"; it alone decides the next
token (" meow", " woof", ...), and without it the answer is " nothing". Prints held-out greedy
accuracy and the rate at which dropping the cue gives " nothing", then writes a Hugging Face
folder (config, weights, tokenizer) that loads offline with the Auto classes.
"""
from __future__ import annotations

import argparse
import json
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
    """Train a byte-level BPE on texts and wrap it as a GPT-2 tokenizer (eos = bos = pad)."""
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=600, min_frequency=2, special_tokens=[EOS],
                            show_progress=False)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m)
              for m in json.loads(bpe.to_str())["model"]["merges"]]
    tok = GPT2TokenizerFast(vocab=bpe.get_vocab(), merges=merges, bos_token=EOS, eos_token=EOS,
                            unk_token=EOS, pad_token=EOS, model_max_length=64)
    # Each answer must be one token, so that "the next token" is the whole planted answer, and
    # each cue one token, so that the planted cause is one input position.
    for word in list(ANIMAL_SOUNDS.values()) + [NULL_ANSWER] + [" " + c for c in ANIMAL_SOUNDS]:
        assert len(tok.encode(word)) == 1, (word, tok.tokenize(word))
    assert tok.decode(tok.encode(texts[0])) == texts[0]
    return tok


def batch_ids(tok: GPT2TokenizerFast, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Return right-padded (input_ids, attention_mask) for texts."""
    enc = tok(texts, padding=True, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


@torch.inference_mode()
def next_tokens(model: GPT2LMHeadModel, tok: GPT2TokenizerFast, prompts: list[str]) -> list[str]:
    """Return the greedy next token (decoded) after each prompt."""
    model.eval()
    out: list[str] = []
    for i in range(0, len(prompts), 256):
        ids, mask = batch_ids(tok, prompts[i:i + 256])
        logits = model(input_ids=ids, attention_mask=mask).logits
        last = logits[torch.arange(len(ids)), mask.sum(1) - 1]  # right padding: last real token
        out += [tok.decode([k]) for k in last.argmax(-1).tolist()]
    return out


def train(model: GPT2LMHeadModel, tok: GPT2TokenizerFast, texts: list[str], epochs: int) -> None:
    """Train the full next-token loss with AdamW and linear warm-up/decay, batch 64."""
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    steps = epochs * ((len(texts) + 63) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps,
                                                pct_start=0.1, anneal_strategy="linear")
    for epoch in range(epochs):
        model.train()
        order, total = torch.randperm(len(texts)).tolist(), 0.0
        for i in range(0, len(texts), 64):
            batch = order[i:i + 64]
            ids, mask = batch_ids(tok, [texts[j] for j in batch])
            # Padding is the eos token too, so mask it out of the labels by attention, not id:
            # the real eos that ends each text stays a target.
            labels = ids.masked_fill(mask == 0, -100)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(batch)
        print(f"epoch {epoch + 1}/{epochs}  loss {total / len(texts):.4f}", flush=True)


def main() -> None:
    """Train, check the quality gates, and write the checkpoint folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "models/planted-gpt2")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    seed_everything(SEED)
    start = time.perf_counter()

    texts = [f"{prompt}{answer}.{EOS}" for prompt, answer, _ in
             gpt_prompts(20000, seed=SEED, split="train")]
    tok = build_tokenizer(texts)
    eos = tok.eos_token_id
    model = GPT2LMHeadModel(GPT2Config(
        vocab_size=len(tok), n_positions=64, n_embd=64, n_layer=2, n_head=4,
        bos_token_id=eos, eos_token_id=eos, pad_token_id=eos))
    train(model, tok, texts, args.epochs)
    print(f"training took {time.perf_counter() - start:.1f}s")

    heldout = gpt_prompts(3000, seed=SEED, split="heldout")
    pred = next_tokens(model, tok, [prompt for prompt, _, _ in heldout])
    acc = float(np.mean([p == answer for p, (_, answer, _) in zip(pred, heldout)]))
    print(f"held-out greedy next-token accuracy: {acc:.4f} on {len(heldout)} prompts")
    cued = [(prompt, cue) for prompt, _, cue in heldout if cue is not None]
    pred = next_tokens(model, tok, [remove_word(prompt, cue) for prompt, cue in cued])
    flip = float(np.mean([p == NULL_ANSWER for p in pred]))
    print(f"cue word dropped: {NULL_ANSWER!r} for {flip:.4f} of {len(cued)}")

    model.save_pretrained(args.out)
    tok.save_pretrained(args.out)
    print(f"wrote {args.out}")
    if acc < 0.97 or flip < 0.95:
        sys.exit(f"quality gate failed: accuracy {acc}, flip {flip}")


if __name__ == "__main__":
    main()
