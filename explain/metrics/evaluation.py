"""evaluate(): faithfulness, sanity, agreement and ground-truth scores for saved Results."""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..adapters.base import Adapter, Example
from ..errors import ExplainError, InputError
from ..results.explanation import Explanation, InputRecord, Results
from . import agreement as agree
from . import eraser, rationale, sanity, summary
from .faithfulness import IMAGE_CELLS, RANDOM_ORDERS, Faithfulness

METRICS = ("faithfulness", "agreement", "sanity")
_NEEDS_MODEL = {"faithfulness", "sanity"}


def evaluate(
    model: Adapter | None,
    results: Results,
    *,
    metrics: Sequence[str] | str = METRICS,
    rationales: Mapping[int, Sequence[str] | np.ndarray] | None = None,
    seed: int = 0,
    steps: int = 20,
    random_orders: int = RANDOM_ORDERS,
    sanity_steps: int = sanity.STEPS,
    cells: int = IMAGE_CELLS,
    removal: str | None = None,
    removals: Sequence[str] | None = None,
    mask: str | None = None,
) -> Results:
    """Return new Results whose explanations carry metric values in `metrics`, with a summary in `run["metrics"]`.

    - "faithfulness": deletion/insertion AUC (RISE, https://arxiv.org/abs/1806.07421) over
      `steps` points and ERASER comprehensiveness/sufficiency (https://arxiv.org/abs/1911.03429),
      each with a `_random` chance level over `random_orders` seeded random orders. Features
      are removed by the metric's own `removal` (the adapter's baseline names; text: mask | pad
      | unk | drop; causal LMs: eos | pad | unk | drop; images: blur | black | mean | noise, on
      a grid of about `cells` cells), recorded in `run["metrics"]["settings"]["removal"]` and
      with each score. By default it is the run's baseline (`run["baseline"]`) where the model
      can remove features that way, else the adapter's default. `removals=("mask", "drop")`
      scores under several: the first fills the plain keys (`deletion_auc`, ...), and every
      one adds `<key>@<removal>` keys and a per-method summary in
      `run["metrics"]["faithfulness"][removal]`. `mask` is the old name of `removal`;
    - "sanity": cascading model randomisation (https://arxiv.org/abs/1810.03292) in
      `sanity_steps` cumulative stages from the output layer down to a fully random network,
      re-running each method once per stage: `sanity_rank_corr` (after the last stage) and
      `sanity_flag`;
    - "agreement": Spearman and top-k overlap between methods on the same input and target;
    - with `rationales` ({input index: words, or a boolean H x W mask}): `rationale_precision`
      and `pointing_game`.

    `model` must be the checkpoint the results were made with; it may be None when only
    "agreement" (and rationales) are asked for. Inputs that fail to prepare are skipped and
    listed in `run["metrics"]["errors"]`.
    """
    started = time.perf_counter()
    chosen = _check_metrics(metrics, steps, random_orders, sanity_steps)
    if chosen & _NEEDS_MODEL:
        if model is None:
            raise ExplainError(f"metrics {sorted(chosen & _NEEDS_MODEL)} need the model: pass the checkpoint the results were made with")
        _check_model(model, results)
    rows0 = model.runner.rows if model is not None else 0
    work = _Work(model, results)
    chosen_removals: list[str | None] = []
    by_removal: dict[str, Any] = {}
    if "faithfulness" in chosen:
        chosen_removals = _removals(model, results, removal, removals, mask)  # type: ignore[arg-type]
        for n, r in enumerate(chosen_removals):
            faith = Faithfulness(model, steps=steps, random_orders=random_orders, seed=seed, cells=cells, removal=r)  # type: ignore[arg-type]
            by_removal.update(_faithfulness(work, faith, primary=n == 0, tagged=len(chosen_removals) > 1))
    blocks: list[str] = []
    if "sanity" in chosen:
        blocks = _sanity(work, sanity_steps, seed)
    pairs: list[dict[str, Any]] = []
    if "agreement" in chosen:
        pairs = _agreement(work)
    if rationales:
        _rationales(work, rationales)

    out = [e.replace(metrics=_finite(c), extras=x) for e, c, x in zip(results, work.checks, work.extras)]
    run = {**results.run, "metrics": {
        "settings": {
            "metrics": [m for m in METRICS if m in chosen] + (["rationale"] if rationales else []),
            "seed": seed,
            "steps": steps,
            "bins": list(eraser.BINS),
            "random_orders": random_orders,
            "image_cells": cells,
            "removal": next(iter(by_removal), None),  # how the plain faithfulness keys removed features, as used
            "removals": list(by_removal),
            "mask": next(iter(by_removal), None),  # the old name of "removal", for readers of schema-1 files
            "sanity_steps": sanity_steps,
            "sanity_rho_limit": sanity.RHO_LIMIT,
            "sanity_p_limit": sanity.P_LIMIT,
            "top_fraction": agree.TOP_FRACTION,
        },
        "methods": summary.summarise(out),
        "faithfulness": by_removal,
        "agreement": {"pairs": agree.pair_summary(pairs), "per_input": pairs} if "agreement" in chosen else {},
        "sanity": _sanity_summary(blocks, out) if "sanity" in chosen else {},
        "errors": work.errors,
        "seconds": round(time.perf_counter() - started, 3),
        "rows": int((model.runner.rows if model is not None else 0) - rows0),
    }}
    return Results(out, model=results.model, inputs=results.inputs, failures=results.failures, run=run)


class _Work:
    """What evaluate() builds up: new checks and extras per explanation, errors, prepared inputs."""

    def __init__(self, model: Adapter | None, results: Results) -> None:
        self.model, self.results = model, results
        self.checks: list[dict[str, Any]] = [dict(e.metrics) for e in results]  # the metrics of each
        self.extras: list[dict[str, Any]] = [dict(e.extras) for e in results]
        self.errors: list[dict[str, Any]] = []
        self.records = {r.index: r for r in results.inputs}
        self._failed = {f.input for f in results.failures if f.method is None}
        self._examples: dict[int, Example | None] = {}

    def example(self, i: int) -> Example | None:
        """Return input i prepared on the model (once), or None when it cannot be (error recorded)."""
        if i not in self._examples:
            self._examples[i] = None
            if i in self._failed or i not in self.records:
                self.errors.append({"input": i, "method": None, "metric": "prepare", "error": "the input failed in the original run"})
            else:
                try:
                    self._examples[i] = prepare_record(self.model, self.records[i])  # type: ignore[arg-type]
                except ExplainError as e:
                    self.errors.append({"input": i, "method": None, "metric": "prepare", "error": str(e)})
        return self._examples[i]


def _removals(
    model: Adapter, results: Results, removal: str | None, removals: Sequence[str] | None, mask: str | None
) -> list[str | None]:
    """Return the removals faithfulness scores under, first the one of the plain keys, each checked now.

    Unset: the run's baseline where this model can remove features that way (IG's "zero" it
    cannot), else None, the adapter's default.
    """
    asked = [r for r in (removals or ()) if r] or [x for x in (removal, mask) if x][:1]
    if removal and mask and removal != mask:
        raise ExplainError(f"removal={removal!r} and mask={mask!r} disagree: 'mask' is the old name of 'removal'; give one")
    if removals and (removal or mask) and [removal or mask] != list(removals)[:1]:
        raise ExplainError("give removal= or removals=, not both")
    check = getattr(model, "check_baseline", None)
    if not asked:
        run_baseline = results.run.get("baseline")
        if isinstance(run_baseline, str) and check is not None:
            try:
                check(run_baseline)
                return [run_baseline]
            except ExplainError:
                pass
        return [None]
    out: list[str | None] = []
    for r in asked:
        if check is not None:
            check(str(r))  # a removal the family lacks: one clear error before any model call
        if r not in out:
            out.append(str(r))
    return out


def _faithfulness(work: _Work, faith: Faithfulness, *, primary: bool, tagged: bool) -> dict[str, Any]:
    """Score every explanation under faith's removal; return {removal as used: per-method summary}.

    The primary removal fills the plain keys and curves; with several removals (`tagged`) each
    also writes `<key>@<removal>` figures.
    """
    used: str | None = faith.removal
    scored: list[tuple[str, dict[str, float]]] = []
    for n, e in enumerate(work.results):
        example = work.example(e.input)
        if example is None:
            continue
        try:
            c, x = faith.score(example, e)
        except Exception as err:  # noqa: BLE001  # one explanation's failure must not end the others
            work.errors.append({**_error(e, "faithfulness", err), "removal": faith.removal})
            continue
        used = str(x["faithfulness_removal"])
        if primary:
            work.checks[n].update(c)
            work.extras[n].update(x)
        if tagged:
            work.checks[n].update({f"{k}@{used}": v for k, v in c.items()})
        scored.append((e.method, c))
    if not scored:
        tried = [x for x in work.errors if x["metric"] == "faithfulness"]
        if tried:  # e.g. a removal the family lacks: say so instead of returning no numbers at all
            raise ExplainError(f"no explanation could be scored for faithfulness; first error: {tried[0]['error']}")
        return {}
    per: dict[str, dict[str, list[float]]] = {}
    for method, c in scored:
        for k, v in c.items():
            per.setdefault(method, {}).setdefault(k, []).append(v)
    return {str(used): {m: {k: summary.stats(v) for k, v in vals.items()} for m, vals in per.items()}}


def _sanity(work: _Work, steps: int, seed: int) -> list[str]:
    usable = [n for n, e in enumerate(work.results) if work.example(e.input) is not None]
    blocks, curves, errors = sanity.sanity_curves(
        work.model,  # type: ignore[arg-type]
        [work.results[n] for n in usable],
        lambda adapter, i: prepare_record(adapter, work.records[i]),
        steps=steps,
        seed=seed,
        method_seed=int(work.results.run.get("seed", 0) or 0),  # the seed the explanations were made with
    )
    work.errors += errors
    for k, curve in curves.items():
        n = usable[k]
        work.extras[n]["sanity_curve"] = np.asarray(curve, dtype=np.float32)
        if curve:
            work.checks[n]["sanity_rank_corr"] = curve[-1]
            work.checks[n]["sanity_flag"] = sanity.flag(curve[-1], int(np.size(work.results[n].scores)))
    return blocks


def _agreement(work: _Work) -> list[dict[str, Any]]:
    pairs = agree.agreement(list(work.results))
    means = agree.mean_agreement(pairs)
    for n, e in enumerate(work.results):
        value = means.get((*agree.target_key(e), e.method))
        if value is not None:
            work.checks[n]["agreement_spearman"] = value
    return pairs


def _rationales(work: _Work, rationales: Mapping[int, Sequence[str] | np.ndarray]) -> None:
    for n, e in enumerate(work.results):
        if e.input in rationales:
            try:
                work.checks[n].update(rationale.score(e, rationales[e.input]))
            except ExplainError as err:
                work.errors.append(_error(e, "rationale", err))


def prepare_record(model: Adapter, record: InputRecord) -> Example:
    """Return the Example of a saved input: its text, prompt + continuation, or image (file, else the stored PNG)."""
    if record.kind == "image":
        if record.path and Path(record.path).is_file():
            raw: Any = record.path
        elif record.image_png:
            from PIL import Image

            raw = np.asarray(Image.open(io.BytesIO(base64.b64decode(record.image_png))))
        else:
            raise InputError(f"input {record.index}: the results file holds neither the image nor a readable path")
    elif record.kind == "prompt" and record.continuation:
        # the continuation is forced, so every target of the saved run exists again
        raw = {"prompt": record.text, "continuation": record.continuation}
    elif record.text_pair is not None:  # a sentence pair: both texts again
        raw = {"text": record.text, "text_pair": record.text_pair}
    else:
        raw = record.text
    return model.prepare(raw, record.index)


def _check_metrics(metrics: Sequence[str] | str, steps: int, random_orders: int, sanity_steps: int) -> set[str]:
    names = [m.strip().lower() for m in (metrics.split(",") if isinstance(metrics, str) else metrics) if m.strip()]
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise ExplainError(f"unknown metric(s) {unknown}; available metrics: {', '.join(METRICS)}")
    for name, value, least in (("steps", steps, 1), ("random_orders", random_orders, 1), ("sanity_steps", sanity_steps, 1)):
        if value < least:
            raise ExplainError(f"{name} must be at least {least}, got {value}")
    return set(names)


def _check_model(model: Adapter, results: Results) -> None:
    ours, theirs = model.info.content_hash, results.model.content_hash
    if ours and theirs and ours != theirs:
        raise ExplainError(
            f"the results were made with another checkpoint ({results.model.path}, {theirs}); "
            f"this model is {model.info.path} ({ours}): evaluate with the checkpoint that made them"
        )
    if model.family != results.model.family:
        raise ExplainError(f"the results explain a {results.model.family} but the model is a {model.family}")


def _sanity_summary(blocks: list[str], out: Iterable[Explanation]) -> dict[str, Any]:
    """Return the stage names, each method's mean rho curve, and a method-level verdict.

    The verdict reads the mean |rho| over inputs after the last stage: one short input can
    correlate by chance, a method that ignores the model does so on every input.
    """
    by_method: dict[str, list[np.ndarray]] = {}
    for e in out:
        if "sanity_curve" in e.extras and len(e.extras["sanity_curve"]):
            by_method.setdefault(e.method, []).append(e.extras["sanity_curve"])
    curves = {m: summary.curve_stats(c) for m, c in by_method.items()}
    last = {m: summary.stats(abs(float(c[-1])) for c in cs)["mean"] for m, cs in by_method.items()}
    return {
        "blocks": blocks,  # the deepest block randomised at each stage
        "curves": curves,
        "mean_abs_rank_corr": last,
        "flagged": {m: bool(np.isfinite(v) and v > sanity.RHO_LIMIT) for m, v in last.items()},
    }


def _finite(checks: Mapping[str, Any]) -> dict[str, Any]:
    """Drop metric values that are NaN (undefined), so a saved and re-read file compares equal."""
    return {k: v for k, v in checks.items() if not (isinstance(v, float) and not np.isfinite(v))}


def _error(e: Explanation, metric: str, err: BaseException) -> dict[str, Any]:
    message = str(err) if isinstance(err, ExplainError) else f"{type(err).__name__}: {err}"
    return {"input": e.input, "method": e.method, "metric": metric, "error": message}
