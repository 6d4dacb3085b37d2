"""Helpers the speed benchmarks share: model shapes built from configs, inputs, row recording,
pure-forward replay, memory and subprocess timing. Imports no `explain` (the direct-library
scripts use it, and their whole-process time must not include our package's imports).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import random
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER = ROOT / "examples" / "models" / "sentiment-bert"
SHAPES: dict[str, dict[str, Any]] = {
    # MiniLM-L6 sized (hidden 384, 12 heads, intermediate 1536): the headline model
    "minilm": {"num_hidden_layers": 6, "hidden_size": 384, "num_attention_heads": 12, "intermediate_size": 1536},
    "tiny": {"num_hidden_layers": 1, "hidden_size": 64, "num_attention_heads": 2, "intermediate_size": 128},
    "bert-base": {"num_hidden_layers": 12, "hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072},
}


def merge_added(base: dict[str, Any], rows: list[dict[str, Any]], key: tuple[str, ...]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return (rows, added) of a benchmark's --add run: the new rows replace `base`'s rows with the same
    `key` fields (a case, a model and size), every other row is kept as it was, and `added` records each
    new key with today's date and load (earlier entries of other keys kept)."""
    mine = {tuple(r[f] for f in key) for r in rows}
    m = machine()
    added = [a for a in base.get("added", []) if tuple(a[f] for f in key) not in mine] + [
        {**dict(zip(key, k)), "date": m["date"], "load_average": m["load_average"]} for k in sorted(mine)]
    return [r for r in base["rows"] if tuple(r[f] for f in key) not in mine] + rows, added


def machine() -> dict[str, Any]:
    """Return the date and what the figures depend on: CPU, cores, torch threads, versions."""
    return {
        "date": datetime.date.today().isoformat(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average": os.getloadavg()[0],
    }


def bert_classifier(folder: Path, shape: str = "minilm", vocab_size: int = 30522, positions: int = 512) -> Path:
    """Save a random-weight BERT classifier of `shape` with the bundled tokenizer; return the folder.

    Random weights cost the same time as trained ones; the vocabulary is padded to `vocab_size`
    (BERT's 30,522) so the embedding table has a real model's size.
    """
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "config.json").exists():
        return folder
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=vocab_size, max_position_embeddings=positions, **SHAPES[shape])
    cfg.num_labels = 2
    cfg.id2label, cfg.label2id = {0: "negative", 1: "positive"}, {"negative": 0, "positive": 1}
    BertForSequenceClassification(cfg).eval().save_pretrained(folder)
    AutoTokenizer.from_pretrained(TOKENIZER).save_pretrained(folder)
    return folder


def short_sentences(n: int, lo: int = 10, hi: int = 15, seed: int = 99) -> list[str]:
    """Return n held-out planted-data sentences of lo..hi plain words (no [MASK]-style tokens)."""
    sys.path.insert(0, str(ROOT / "examples"))
    from planted_data import sentiment_examples

    out = [t for t, _, _ in sentiment_examples(40 * n, seed=seed, split="heldout") if lo <= len(t.split()) <= hi and "[" not in t]
    if len(out) < n:
        raise SystemExit(f"only {len(out)} sentences of {lo}-{hi} words")
    return out[:n]


def sentences_of(n: int, tokens: int, seed: int = 0) -> list[str]:
    """Return n texts of about `tokens` tokens (with [CLS]/[SEP]) from the bundled vocabulary."""
    words = [w for w in (TOKENIZER / "vocab.txt").read_text().split() if w.isalpha()]
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(tokens - 2)) for _ in range(n)]


class RowRecorder:
    """Records every forward call of a module (shapes, ids, grad mode) so the exact rows can be
    replayed as a pure forward later; counts rows (the batch dimension)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.calls: list[dict[str, Any]] = []
        self.rows = 0
        self._handle = module.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ids: Any = kwargs.get("input_ids", args[0] if args else None)
        emb = kwargs.get("inputs_embeds")
        mask = kwargs.get("attention_mask")
        call: dict[str, Any] = {"grad": torch.is_grad_enabled() and not torch.is_inference_mode_enabled()}
        if emb is not None:
            call["shape"] = tuple(emb.shape)
            call["grad"] = call["grad"] and emb.requires_grad
        else:
            call["ids"] = ids.detach().clone()
        shape = call["shape"] if emb is not None else tuple(ids.shape)
        call["mask"] = None if mask is None else mask.detach().clone().expand(shape[:2]).contiguous()
        self.rows += int((emb if emb is not None else ids).shape[0])
        self.calls.append(call)

    def remove(self) -> None:
        """Stop recording."""
        self._handle.remove()


def replay_seconds(model: Any, calls: list[dict[str, Any]]) -> float:
    """Time the recorded calls again as pure forwards (forward+backward to the input embeddings
    where the call needed gradients), weights frozen as the methods run them; return seconds."""
    emb_layer = model.get_input_embeddings()
    for p in model.parameters():
        p.requires_grad_(False)

    def one(call: dict[str, Any]) -> None:
        if "ids" in call:
            ids = call["ids"]
            if not call["grad"]:
                with torch.inference_mode():
                    model(input_ids=ids, attention_mask=call["mask"])
                return
            x = emb_layer(ids).detach()
        else:
            x = torch.randn(call["shape"])
            if not call["grad"]:
                with torch.inference_mode():
                    model(inputs_embeds=x, attention_mask=call["mask"])
                return
        x.requires_grad_(True)
        model(inputs_embeds=x, attention_mask=call["mask"]).logits[:, 0].sum().backward()

    for call in calls[:2]:  # warm-up: kernels for these shapes
        one(call)
    t0 = time.perf_counter()
    for call in calls:
        one(call)
    return time.perf_counter() - t0


def rss_mb() -> float:
    """Return this process's current resident memory in MiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    """Return this process's peak resident memory in MiB (its own lifetime: one configuration)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_process(cmd: list[str], ok: tuple[int, ...] = (0,), epochs: dict[str, float] | None = None) -> tuple[float, float, str]:
    """Run `cmd`; return (wall seconds, that process's own peak RSS in MiB, stderr tail).

    The peak comes from wait4 on that child alone, not the lifetime maximum of all children.
    `epochs`, when given, gets the wall-clock times of the launch and of the exit ("launch",
    "exit"), to place the child's own timestamps (its start-up, its teardown) between them.
    """
    import tempfile

    with tempfile.TemporaryFile("w+") as err:
        launch, t0 = time.time(), time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        if epochs is not None:
            epochs.update(launch=launch, exit=time.time())
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read()[-3000:]
    if proc.returncode not in ok:
        raise RuntimeError(f"{' '.join(cmd[:5])} ... exited {proc.returncode}: {tail}")
    return wall, usage.ru_maxrss / 1024, tail


def worker(script: Path, spec: dict[str, Any], tmp: Path, name: str) -> dict[str, Any]:
    """Run `script spec.json out.json` in its own process; return its JSON plus wall and peak, and
    (when the script writes its `t_top` and `t_end` timestamps) its start-up (launch to its first
    line) and teardown (its last line to the exit) in seconds."""
    spec_path, out_path = tmp / f"{name}.spec.json", tmp / f"{name}.out.json"
    spec_path.write_text(json.dumps(spec))
    epochs: dict[str, float] = {}
    wall, peak, _ = run_process([sys.executable, str(script), str(spec_path), str(out_path)], epochs=epochs)
    doc: dict[str, Any] = json.loads(out_path.read_text())
    doc.update(process_s=wall, process_peak_mb=peak)
    if "t_top" in doc and "t_end" in doc:
        doc.update(startup_s=doc["t_top"] - epochs["launch"], teardown_s=epochs["exit"] - doc["t_end"])
    return doc


def render_between(path: Path, begin: str, end: str, block: str) -> None:
    """Replace the text from the `begin` marker to the `end` marker in the Markdown file with `block` (markers included)."""
    text = path.read_text()
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{path} has no {begin} ... {end} markers")
    path.write_text(pattern.sub(lambda _: block, text))
