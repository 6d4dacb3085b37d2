"""What "removing" a word or an image region means: one named removal per family, for every method.

A removal (also called the baseline) is the counterfactual every method of a run asks about:
IG integrates from the input to the all-removed input, SHAP and ablation evaluate coalitions
with the other features removed, LIME samples neighbours with features removed, occlusion fills
windows, and the faithfulness metrics remove features in ranked order. Each family's adapter is
the only place a name is turned into token ids or pixels; this module holds the names, what
they mean (for docs, CLI help and reports), and how view options are read.

View options: `baseline` holds the removal's name everywhere. `mask`, its name before, is read
as an alias (old CLI uses such as `--set shap.mask=drop`, old results files), and a view given
both with different values refuses rather than pick one.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import MethodError

TEXT_CLASSIFIER: Mapping[str, str] = {
    "mask": "each token of a removed word becomes the mask token ([MASK])",
    "unk": "each token of a removed word becomes the unknown token ([UNK])",
    "pad": "each token of a removed word becomes the pad token ([PAD]), still attended to",
    "drop": "removed words are deleted: the text is shorter (IG cannot drop words: use mask, pad or unk)",
}
CAUSAL_LM: Mapping[str, str] = {
    "eos": "each token of a removed word becomes the end-of-text token (GPT-2's <|endoftext|>, its own 'no text')",
    "unk": "each token of a removed word becomes the unknown token (GPT-2's is <|endoftext|> too)",
    "pad": "each token of a removed word becomes the pad token (only for tokenizers that have one)",
    "drop": "removed words are deleted: the context is shorter (IG cannot drop words: use eos, pad or unk)",
}
IMAGE: Mapping[str, str] = {
    "blur": "removed pixels come from a strongly blurred copy (sigma = 10% of the shorter side)",
    "black": "removed pixels are black (0)",
    "mean": "removed pixels take the image's own mean colour (per channel)",
    "noise": "removed pixels come from one uniform-noise image, fixed per input and run seed",
    "grey": "removed pixels are mid-grey (0.5); the image fill called 'grey' before",
}
# Gradient-only baselines: a point in embedding space that no token-id input can be.
GRADIENT_ONLY: Mapping[str, str] = {
    "zero": "IG only: every word's embedding vectors are zero (special tokens kept)",
}

# Each family's removals in the order a default is chosen (the first the model has); see the adapters.
DESCRIPTIONS: Mapping[str, Mapping[str, str]] = {
    "text-classifier": TEXT_CLASSIFIER,
    "causal-lm": CAUSAL_LM,
    "image-classifier": IMAGE,
}

OPTION = "baseline"  # the view option that holds a removal's name
OLD_OPTIONS = ("mask",)  # names it had before; still read


def requested(options: Mapping[str, Any]) -> tuple[str | None, str]:
    """Return (the removal named in view options or None, the option that named it).

    `baseline` is read first, then its old name `mask`; raises MethodError when both are given
    and disagree, since which one the user meant is unknowable.
    """
    names = {k: str(options[k]) for k in (OPTION, *OLD_OPTIONS) if options.get(k) is not None}
    if len(set(names.values())) > 1:
        shown = ", ".join(f"{k}={v!r}" for k, v in names.items())
        raise MethodError(f"two removals asked for ({shown}): 'mask' is the old name of 'baseline'; give one")
    for key, value in names.items():
        return value, key
    return None, OPTION


def check(family: str, name: str, allowed: tuple[str, ...], *, gradient: bool, option: str = OPTION) -> str:
    """Return `name` if the family can remove features that way (on a gradient path when `gradient`).

    Raises MethodError naming the choices; `drop` on a gradient path and a gradient-only
    baseline on a perturbation path get their own reasons.
    """
    text = family != "image-classifier"
    if gradient and name == "drop":
        choices = " or ".join([*(b for b in allowed if b != "drop"), "zero"])
        raise MethodError(f"IG cannot drop words (its path needs an input of the same length): give IG baseline {choices}")
    usable = allowed + (tuple(GRADIENT_ONLY) if gradient and text else ())
    if name in usable:
        return name
    if text and name in GRADIENT_ONLY:
        raise MethodError(f"baseline {name!r} is a point in embedding space that only IG can use: use one of {', '.join(allowed)}")
    where = {"image-classifier": f"unknown image {option} {name!r}", "causal-lm": f"unknown {option} {name!r} for a causal LM"}
    raise MethodError(f"{where.get(family, f'unknown {option} {name!r}')}: use one of {', '.join(usable)}")


def default(allowed: tuple[str, ...], gradient: bool) -> str:
    """Return the removal a method uses when none is set: the first allowed, in preference order.

    A gradient path cannot drop words: when a tokenizer has no token to fill removed words with
    (no mask, unk or pad; causal LMs: no eos, unk or pad), `drop` is all the perturbation
    methods have, and IG falls back on zero embeddings instead of failing.
    """
    usable = [b for b in allowed if not (gradient and b == "drop")]
    return usable[0] if usable else next(iter(GRADIENT_ONLY))


def used(settings: Mapping[str, Any]) -> str | None:
    """Return the removal an Explanation's settings record: `baseline`, else the old `mask` (old files)."""
    for key in (OPTION, *OLD_OPTIONS):
        value = settings.get(key)
        if value is not None:
            return str(value)
    return None


def describe(family: str, name: str) -> str:
    """Return one sentence saying what removing a feature meant under `name` for `family`."""
    table = {**DESCRIPTIONS.get(family, {}), **GRADIENT_ONLY}
    return table.get(name, f"features removed by {name!r}")
