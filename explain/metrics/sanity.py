"""Model parameter randomisation test (Adebayo et al. 2018, https://arxiv.org/abs/1810.03292), cascading.

An explanation of what a model learnt must change when what it learnt is destroyed. A copy
of the model has its blocks re-drawn at random from the output layer downwards, cumulatively,
in a few stages down to the input layer; after each stage the same method, settings and seed
explain the same input and target again, and the Spearman rank correlation to the original
explanation is recorded. An explanation whose ranking survives the fully randomised network
(|rho| > RHO_LIMIT after the last stage, and significant) is flagged: it describes the input
(edges, word positions), not the model. The absolute value counts because a ranking turned upside down
still singles out the same features (on partly randomised networks this is common: the
intact lower layers keep a planted word salient while the new head flips its sign).

Two model-independent "explanations" (word position, image edges) are built here to show
what a flagged explanation looks like; they are never registered as methods.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Callable, Iterator

import numpy as np
import torch

from .. import methods as registry
from ..adapters import removal
from ..adapters.base import Adapter, Example
from ..errors import MethodError
from ..results.explanation import Explanation, Target
from .agreement import spearman

RHO_LIMIT = 0.5  # |Spearman rho| above this after randomisation: the explanation barely changed
P_LIMIT = 0.05  # ... and that correlation is unlikely by chance (short texts rank few features)
STEPS = 3  # cascade stages: the output layer, about half the blocks (output side first), all of them


def blocks(model: torch.nn.Module) -> list[tuple[str, list[torch.nn.Parameter]]]:
    """Return the model's parameter blocks as (name, parameters), output layer first.

    A block is a numbered layer of a layer list (``encoder.layer.11``, ``h.3``, ``layer4.1``)
    or else one module with parameters; a normalisation module without a layer of its own
    (BatchNorm after a conv, a final LayerNorm) joins the block registered before it, since
    re-drawing a norm's scale alone hardly changes a network. Order is registration order,
    which for the model families here is input-to-output; it is reversed.
    """
    groups: dict[str, list[torch.nn.Parameter]] = {}
    last: str | None = None
    for name, module in model.named_modules():
        own = list(module.parameters(recurse=False))
        if not own:
            continue
        key = _layer_of(name)
        if key == name and "norm" in type(module).__name__.lower() and last is not None:
            key = last
        groups.setdefault(key, []).extend(own)
        last = key
    return list(reversed(list(groups.items())))


def _layer_of(name: str) -> str:
    """Return the outermost numbered container holding module `name` (itself when there is none)."""
    parts = name.split(".")
    for i, part in enumerate(parts[:-1]):  # a numbered leaf ("features.0") is its own block
        if re.fullmatch(r"\d+", part):
            return ".".join(parts[: i + 1])
    return name


def randomise(params: list[torch.nn.Parameter], generator: torch.Generator) -> None:
    """Re-draw parameters in place from a Gaussian with each tensor's own mean and std.

    Keeping each tensor's scale keeps activations in range, so a randomised network still
    gives graded outputs (a re-initialisation at a library's default scale can saturate a
    softmax and leave every gradient zero, which would pass any explanation trivially).
    """
    with torch.no_grad():
        for p in params:
            mean, std = p.float().mean(), (p.float().std() if p.numel() > 1 else p.float().abs().mean())
            noise = torch.randn(p.shape, generator=generator, dtype=torch.float32)
            p.copy_((mean + std * noise).to(p.dtype))


def stages(n_blocks: int, steps: int) -> list[int]:
    """Return how many blocks (top first) are random after each of `steps` stages: the output layer first, all of them last.

    Adebayo et al. cascade from the logits down to the input layer, ending at a fully random
    network; spreading the stages evenly keeps the cost at `steps` re-explanations whatever
    the depth (BERT-base has 16 blocks), while the last stage still tests the full cascade.
    One stage means the fully random network at once.
    """
    steps = max(1, min(steps, n_blocks))
    if steps == 1:
        return [n_blocks]
    return sorted({round(1 + (n_blocks - 1) * k / (steps - 1)) for k in range(steps)})


def cascade(model: Adapter, steps: int, seed: int) -> Iterator[tuple[str, Adapter]]:
    """Yield (deepest block randomised so far, adapter over the randomised copy) after each stage.

    The copy shares the runner (its rows are counted with the rest) and the tokenizer; the
    caller's model is never touched. One copy is randomised further at each stage.
    """
    shared = {id(model.runner): model.runner, id(model.info): model.info}
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is not None:
        shared[id(tokenizer)] = tokenizer
    clone = copy.deepcopy(model, shared)
    generator = torch.Generator().manual_seed(seed)
    ordered = blocks(clone.model)
    done = 0
    for upto in stages(len(ordered), steps):
        for _, params in ordered[done:upto]:
            randomise(params, generator)
        done = upto
        yield ordered[upto - 1][0], clone


def reexplain(model: Adapter, example: Example, e: Explanation, seed: int) -> Explanation:
    """Return the explanation of e's target by e's method with e's settings, on `model`."""
    if e.method in BASELINES:
        return BASELINES[e.method](model, example, e.target, _granularity(e))
    method = registry.get(e.method)
    known = {f for f, *_ in method.describe_settings()}
    given = dict(e.settings)
    # the removal under either of its names (`baseline`, old `mask`), whichever the method reads now
    used = removal.used(given)
    for key in (removal.OPTION, *removal.OLD_OPTIONS):
        given.pop(key, None)
    if used is not None:
        name = removal.OPTION if removal.OPTION in known else next((k for k in removal.OLD_OPTIONS if k in known), None)
        if name is not None:
            given[name] = used
    settings = method.settings({k: v for k, v in given.items() if k in known})
    torch.manual_seed(seed)  # as the engine does before each method
    return method.explain(model, example, e.target, settings, granularity=_granularity(e), seed=seed)


def correlation(original: Explanation, randomised: Explanation) -> float:
    """Return Spearman's rho between two explanations' scores; 0 when only the randomised one is constant."""
    a, b = np.asarray(original.scores), np.asarray(randomised.scores)
    if a.shape != b.shape:
        raise MethodError(f"the randomised model's {original.method} explanation has shape {b.shape}, the original {a.shape}")
    if a.size > 1 and np.ptp(a) > 0 and np.ptp(b) == 0:
        return 0.0  # a flat map after randomisation keeps none of the original order
    return spearman(a, b)


def flag(rho: float, n: int | None = None) -> float:
    """Return 1.0 when |rho| after randomisation exceeds RHO_LIMIT (and, given n features, is significant), else 0.0.

    On a ten-word text two unrelated rankings reach |rho| > 0.5 about one time in seven; the
    significance test (two-sided, p < P_LIMIT, Spearman's t approximation) keeps such chance
    correlations of short inputs from flagging a sound method. Image maps (n = pixels) and
    rho = 1 pass the test at once, so there only RHO_LIMIT decides.
    """
    if not np.isfinite(rho) or abs(rho) <= RHO_LIMIT:
        return 0.0
    if n is None or abs(rho) >= 1.0:
        return 1.0
    if n < 3:
        return 0.0  # two features: every ranking is +-1 by chance
    from scipy.stats import t

    stat = abs(rho) * np.sqrt((n - 2) / (1.0 - rho * rho))
    return float(2 * t.sf(stat, n - 2) < P_LIMIT)


# ---- model-independent "explanations": what the test must flag ------------------------------
def position_explanation(model: Adapter, example: Example, target: Target, granularity: str = "word") -> Explanation:
    """Return a model-blind text 'explanation': the earlier the word, the higher its score."""
    view = model.perturbation_view(example, target, granularity=granularity)
    d = len(view.features)
    return Explanation(
        method="position",
        family=model.family,
        input=example.index,
        target=target,
        features=view.features,
        scores=np.linspace(1.0, 0.0, d, dtype=np.float32) if d > 1 else np.ones(d, dtype=np.float32),
        granularity=view.granularity,
        settings={},
        extras={"note": "model-independent baseline for the sanity check"},
    )


def edge_explanation(model: Adapter, example: Example, target: Target, granularity: str = "pixel") -> Explanation:
    """Return a model-blind image 'explanation': the Sobel edge magnitude of the picture."""
    from scipy.ndimage import sobel

    pixels = model.pixels(example)[0].detach().float().cpu().numpy().mean(0)  # type: ignore[attr-defined]  # (H, W) grey
    edges = np.hypot(sobel(pixels, axis=0), sobel(pixels, axis=1)).astype(np.float32)
    return Explanation(
        method="edges",
        family=model.family,
        input=example.index,
        target=target,
        features=(),
        scores=edges,
        granularity="pixel",
        settings={},
        extras={"note": "model-independent baseline for the sanity check"},
    )


def baseline_explanation(model: Adapter, example: Example, target: Target, granularity: str = "word") -> Explanation:
    """Return the model-independent explanation that fits the family: edges for images, word position otherwise."""
    if model.family == "image-classifier":
        return edge_explanation(model, example, target)
    return position_explanation(model, example, target, granularity)


BASELINES: dict[str, Callable[[Adapter, Example, Target, str], Explanation]] = {
    "position": position_explanation,
    "edges": edge_explanation,
}


def _granularity(e: Explanation) -> str:
    return e.granularity if e.granularity in ("word", "token") else "word"


def sanity_curves(
    model: Adapter,
    explanations: list[Explanation],
    prepare: Callable[[Adapter, int], Example],
    *,
    steps: int = STEPS,
    seed: int = 0,
    method_seed: int = 0,
) -> tuple[list[str], dict[int, list[float]], list[dict[str, Any]]]:
    """Return (block names, {position in `explanations`: rho after each step}, errors).

    `prepare(adapter, input index)` re-prepares an input on an adapter (the randomised copy
    needs its own prediction and caches). `seed` draws the random weights; `method_seed` is
    the seed the explanations were made with, so sampling methods redraw the same samples and
    only the model differs. Explanations that fail on the randomised model are reported in
    errors and left out.
    """
    names: list[str] = []
    curves: dict[int, list[float]] = {i: [] for i in range(len(explanations))}
    errors: list[dict[str, Any]] = []
    for name, randomised in cascade(model, steps, seed):
        names.append(name)
        examples: dict[int, Example | Exception] = {}
        for i, e in enumerate(explanations):
            if i not in curves:
                continue
            try:
                if e.input not in examples:
                    try:
                        examples[e.input] = prepare(randomised, e.input)
                    except Exception as err:  # noqa: BLE001  # stored, raised below for each of its explanations
                        examples[e.input] = err
                ex = examples[e.input]
                if isinstance(ex, Exception):
                    raise ex
                curves[i].append(correlation(e, reexplain(randomised, ex, e, method_seed)))
            except Exception as err:  # noqa: BLE001  # one explanation's failure must not end the others
                errors.append({"input": e.input, "method": e.method, "metric": "sanity", "error": f"{type(err).__name__}: {err}"})
                del curves[i]
    return names, curves, errors
