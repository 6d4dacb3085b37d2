"""`explain pack`: a code file, a checkpoint and a tokenizer -> an explain-torch folder (checked by the load-time probe)."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

EXAMPLES = """examples:
  explain pack --architecture model.py:GPT --weights out/ckpt.pt --tokenizer tokenizer.json --family causal-lm --out my-gpt/
  explain pack --architecture my_bert.py:Classifier --arch-args args.json --weights model.pt \\
      --tokenizer tok.json --family text-classifier --labels negative,positive --out my-bert/
  explain pack --architecture net.py:Net --weights net.pth --family image-classifier \\
      --preprocessing '{"size": [32, 32], "channels": 3, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}' --labels cat,dog --out my-cnn/
  explain pack --weights traced.pt --family image-classifier --preprocessing prep.json --out my-cnn/   # TorchScript
  explain pack --architecture model.py:Net --weights lightning.ckpt --family image-classifier --preprocessing prep.json --out my-cnn/
then: explain run my-gpt/ --prompt "..." --trust-remote-code
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `pack` sub-command to an argparse subparsers object; return its parser."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "pack",
        help="make an explain-torch folder from your own model code, checkpoint and tokenizer",
        description="Write an explain-torch checkpoint folder: the architecture's code file copied in, the weights "
        "as safetensors, the tokenizer, config.json; then load it once and run the load-time probe (two different rows, each also alone) to check it.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--architecture", metavar="FILE.py:Name",
                   help="your model class or factory: FILE.py:Name or package.module:Name (not needed for a TorchScript file)")
    p.add_argument("--weights", required=True, metavar="FILE",
                   help="a state dict (.safetensors, .pt/.pth), a training checkpoint (nanoGPT ckpt.pt, Lightning .ckpt, "
                   "{'model_state_dict': ...}), a TorchScript file, or a whole pickled module (with --allow-pickle)")
    p.add_argument("--weights-key", metavar="KEY",
                   help="the checkpoint entry (e.g. ema) or key prefix ending in '.' (e.g. ema_model.) holding the model's weights "
                   "(default: found)")
    p.add_argument("--family", required=True, choices=("causal-lm", "text-classifier", "image-classifier"))
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to write (never overwritten without --force)")
    p.add_argument("--arch-args", metavar="JSON", help="constructor keyword arguments: a JSON file or JSON text (default: the checkpoint's model_args)")
    p.add_argument("--tokenizer", metavar="PATH", help="text models: a tokenizers JSON file or a Hugging Face tokenizer folder")
    p.add_argument("--labels", help="class names (classifiers): a comma list, or a text file with one name per line (names may hold commas)")
    p.add_argument("--preprocessing", metavar="JSON", help='image classifiers: {"size": [H, W], "channels": C, "mean": [...], "std": [...]} (JSON file or text)')
    p.add_argument("--embeddings", metavar="MODULE", help="the token embedding module's name (default: the nn.Embedding that fits the vocabulary)")
    p.add_argument("--attention-probs", metavar="GLOB", help="module-name glob whose outputs are attention probabilities, e.g. 'transformer.h.*.attn.attn_dropout'")
    p.add_argument("--head", choices=("softmax", "sigmoid", "probabilities", "log_probabilities", "regression"),
                   help="what the model's outputs are (default: read at load: one output is a binary classifier's logit, "
                   "rows summing to 1 are probabilities, otherwise softmax logits)")
    p.add_argument("--answer-row", choices=("first", "last", "mean"),
                   help="text classifiers: the token(s) the head reads ([CLS]-style first, last, or the mean of every token)")
    p.add_argument("--force", action="store_true", help="write into an existing, non-empty --out")
    p.add_argument("--allow-pickle", action="store_true", help="read a whole pickled module (torch.save(model)): it runs pickled code")
    p.add_argument("--quiet", "-q", action="store_true", help="print errors only")
    p.add_argument("--verbose", "-v", action="store_true", help="print tracebacks with errors")
    return p


def run(args: argparse.Namespace) -> int:
    """Pack the folder; print where it is and the command that explains it; return 0 (errors raise ExplainError)."""
    from explain.errors import CheckpointError, ExplainWarning
    from explain.loading.packing import _arch_args, pack, run_flags

    prep = None
    if args.preprocessing:
        try:
            prep = _arch_args(args.preprocessing)
        except CheckpointError as e:
            raise CheckpointError(str(e).replace("--arch-args", "--preprocessing")) from e
    labels = _labels(args.labels) if args.labels else None
    with warnings.catch_warnings(record=True) as caught:  # what the load-time probe assumed, one line each
        warnings.simplefilter("always", ExplainWarning)
        folder = pack(
            args.architecture,
            args.weights,
            args.family,
            args.out,
            arch_args=args.arch_args,
            tokenizer=args.tokenizer,
            labels=labels,
            preprocessing=prep,
            embeddings=args.embeddings,
            attention_probs=args.attention_probs,
            force=args.force,
            allow_pickle=args.allow_pickle,
            head=getattr(args, "head", None),
            answer_row=getattr(args, "answer_row", None),
            weights_key=args.weights_key,
        )
    for w in caught:
        if issubclass(w.category, ExplainWarning):
            print(f"explain: warning: {w.message}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    if not args.quiet:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        flag = "--prompt" if args.family == "causal-lm" else "--image" if args.family == "image-classifier" else "--text"
        one_row = any("one row at a time" in str(w.message) for w in caught)
        print(f"wrote {folder}/ ({cfg.get('architecture', 'a pickled module')}, {args.family}); loaded it and ran its probe", file=sys.stderr)
        print(f"next: explain run {folder} {flag} ... {run_flags(cfg)}{' --batch-size 1' if one_row else ''}", file=sys.stderr)
    return 0


def _labels(value: str) -> list[str]:
    """Return class names from a file of one name per line, or from a comma list."""
    path = Path(value)
    if path.is_file():
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [x.strip() for x in value.split(",") if x.strip()]
