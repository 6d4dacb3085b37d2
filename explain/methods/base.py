"""The method contract: a name, the families it serves, typed settings, and explain()."""

from __future__ import annotations

import dataclasses
import time
import typing
from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

from ..adapters.base import Adapter, Example, PerturbationView
from ..adapters.removal import DESCRIPTIONS
from ..errors import MethodError
from ..results.explanation import Explanation, SelfCheck, Target, evidence


class Method(ABC):
    """One attribution method: `supports(adapter)` and `explain(...)` returning an Explanation."""

    name: ClassVar[str]
    title: ClassVar[str]
    families: ClassVar[tuple[str, ...]]
    Settings: ClassVar[type]  # a dataclass: its fields are the method's settings and defaults
    reference: ClassVar[str] = ""
    # Modules the method calls into, imported by the engine before its clock starts so that the
    # first input's `seconds` is that input's work, not a library's import.
    libraries: ClassVar[tuple[str, ...]] = ()
    # True when the method reaches the model only through `Runner.map` and reads no global RNG:
    # then inputs can be explained side by side, sharing model calls (input_batching)
    batchable: ClassVar[bool] = False
    # The units of the scores, for the 'evidence' self-check every Explanation gets: "output" (they
    # add up to changes of the model's output: no evidence below NO_EVIDENCE), "other" (no
    # evidence only when all are 0), or None (no such check: attention weights are never all 0).
    score_units: ClassVar[str | None] = "output"

    def supports(self, adapter: Adapter) -> bool:
        """Return True when this method can explain models of the adapter's family."""
        return adapter.family in self.families

    def refusal(self, adapter: Adapter) -> str | None:
        """Return why this method cannot explain this model of a family it serves (one line), or None.

        Checked before any input runs: a method asked for by name stops the run with this
        message; "all" leaves the method out. The adapter's own refusals (`Adapter.refused`, e.g.
        what a TorchScript program cannot serve) come first; a method adds its own by overriding.
        """
        why = adapter.refused.get(self.name)
        return None if why is None else f"method {self.name!r} cannot run on this model: {why}"

    def settings(self, overrides: Mapping[str, Any] | None = None) -> Any:
        """Return the Settings with `overrides` applied, converting strings from the CLI."""
        fields = {f.name: f for f in dataclasses.fields(self.Settings)}
        hints = typing.get_type_hints(self.Settings)
        values: dict[str, Any] = {}
        given: dict[str, str] = {}  # setting -> the key the user gave it under
        for key, raw in (overrides or {}).items():
            k = key.replace("-", "_")
            if k not in fields and ALIASES.get(k) in fields:
                k = ALIASES[k]
            if k not in fields:
                raise MethodError(
                    f"unknown setting {key!r} for method {self.name!r}; its settings are: {', '.join(fields)}"
                )
            value = _coerce(self.name, k, raw, hints[k])
            if k in values and values[k] != value:
                raise MethodError(
                    f"{self.name}: {given[k]}={values[k]!r} and {key}={value!r} set one setting twice: "
                    f"{_old_name(k)!r} is the old name of {k!r}; give one"
                )
            if k not in values or value is not None:
                values[k], given[k] = value, key
        return self.Settings(**values)

    @abstractmethod
    def explain(
        self, adapter: Adapter, example: Example, target: Target, settings: Any, *, granularity: str, seed: int
    ) -> Explanation:
        """Return the Explanation of `target` for `example`."""

    def result(self, adapter: Adapter, example: Example, target: Target, cost: "Cost", **fields: Any) -> Explanation:
        """Return this method's Explanation of (example, target), with its cost, the input's extras and its 'evidence' self-check filled in."""
        extras = {**adapter.input_extras(example), **fields.pop("extras", {})}
        if self.score_units is not None:
            c = fields.get("checks") or {}
            # f(x) - f(baseline) where the method measured it (IG; SHAP's output minus its base value)
            change = c.get("output_change", c["output"] - c["base_value"] if "output" in c and "base_value" in c else None)
            found = evidence(fields["scores"], in_output_units=self.score_units == "output", output_change=change)
            fields["self_checks"] = (*fields.get("self_checks", ()), found)
        return Explanation(
            method=self.name,
            family=adapter.family,
            input=example.index,
            target=target,
            seconds=cost.seconds,
            rows=cost.rows,
            cached_rows=cost.cached_rows,
            extras=extras,
            **fields,
        )

    def perturbation_result(
        self,
        adapter: Adapter,
        example: Example,
        target: Target,
        cost: "Cost",
        view: PerturbationView,
        scores: Any,
        settings: Mapping[str, Any],
        checks: Mapping[str, float] | None = None,
        self_checks: Sequence[SelfCheck] = (),
    ) -> Explanation:
        """Return the Explanation of a perturbation method: the view's features (images: its
        regions, kept in extras), granularity, removal (`settings["baseline"]`), output and
        extras, with float32 scores."""
        return self.result(
            adapter,
            example,
            target,
            cost,
            features=view.features if view.granularity != "pixel" else (),
            scores=np.asarray(scores, dtype=np.float32),
            granularity=view.granularity,
            settings={**_without_aliases(settings), "baseline": view.mask, "output": view.output},
            checks=dict(checks or {}),
            extras=view.extras,
            self_checks=tuple(self_checks),
        )

    def describe_settings(self) -> list[tuple[str, str, str]]:
        """Return (name, default, help) for each setting."""
        out = []
        for f in dataclasses.fields(self.Settings):
            default = f.default if f.default is not dataclasses.MISSING else ""
            out.append((f.name, repr(default), str(f.metadata.get("help", ""))))
        return out


class Cost:
    """Measures seconds and runner rows across a `with` block, and the rows a cache answered.

    `rows` counts the rows the runner evaluated. Rows a method asks for through
    `counted(view.evaluate)` that never reach the model (an adapter's cache, such as the causal
    LM's prefix cache, a repeated row evaluated once, or this Cost's own memo) are `cached_rows`:
    asked = rows + cached_rows for a method whose every row goes through `counted`.
    """

    def __init__(self, adapter: Adapter) -> None:
        self.runner = adapter.runner
        self.seconds = 0.0
        self.rows = 0
        self.cached_rows = 0
        self.asked_rows = 0

    def counted(
        self, evaluate: Callable[[np.ndarray], np.ndarray], *, remember: bool = False
    ) -> Callable[[np.ndarray], np.ndarray]:
        """Return `evaluate` (keep-masks -> outputs) counting the rows asked and those no model ran.

        With `remember`, outputs are kept per distinct mask for the life of the returned function, so that a
        second estimate over rows already scored (SHAP's half-budget check) costs no model rows.
        """
        memo: dict[bytes, Any] = {}

        def run(keep: np.ndarray) -> np.ndarray:
            keep = np.asarray(keep, dtype=bool)
            keep = keep.reshape(len(keep), -1) if keep.ndim > 1 else keep.reshape(1, -1)
            keys = [np.packbits(k).tobytes() + len(k).to_bytes(4, "little") for k in keep] if remember else []
            todo = list(range(len(keep)))
            if remember:  # each distinct row not scored yet, once (a row repeated within this call too)
                firsts = {key: i for i, key in reversed(list(enumerate(keys))) if key not in memo}
                todo = sorted(firsts.values())
            before = self.runner.rows
            fresh = np.asarray(evaluate(keep[todo] if remember else keep)).reshape(-1) if todo else np.zeros(0, dtype=np.float32)
            evaluated = self.runner.rows - before
            self.asked_rows += len(keep)
            self.cached_rows += max(0, len(keep) - evaluated)
            if not remember:
                return fresh
            for i, v in zip(todo, fresh):
                memo[keys[i]] = v
            return np.array([memo[key] for key in keys], dtype=fresh.dtype)

        return run

    def __enter__(self) -> "Cost":
        self._t0 = time.perf_counter()
        self._r0 = self.runner.rows
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = round(time.perf_counter() - self._t0, 4)  # as stored in results files
        self.rows = self.runner.rows - self._r0


_VIEW_OPTIONS = ("output", "baseline", "mask", "segmentation", "n_segments")

# Old setting names still accepted in overrides (old command lines such as `--set shap.mask=drop`),
# mapped to the setting they now name. Explanations record only the new name.
ALIASES: Mapping[str, str] = {"mask": "baseline"}


def _old_name(setting: str) -> str:
    return next((old for old, new in ALIASES.items() if new == setting), setting)


def _without_aliases(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Return settings without old names (an Explanation records the removal once, as `baseline`)."""
    return {k: v for k, v in settings.items() if k not in ALIASES}


def view_options(settings: Any, granularity: str) -> dict[str, Any]:
    """Return the adapter view options among `settings` that are set (None = adapter default)."""
    opts = {"granularity": granularity}
    for key in _VIEW_OPTIONS:
        value = getattr(settings, key, None)
        if value is not None:
            opts[key] = value
    return opts


def baseline_help(families: Sequence[str] = tuple(DESCRIPTIONS)) -> str:
    """Return the help text of a `baseline` setting: the removals of each family, its default first."""
    kinds = {"text-classifier": "text", "causal-lm": "causal LMs", "image-classifier": "images"}
    listed = "; ".join(f"{kinds.get(f, f)}: {' | '.join(DESCRIPTIONS[f])} (default {next(iter(DESCRIPTIONS[f]))})" for f in families)
    return (f"how a feature is removed (default: the run's --baseline, else the model's); {listed}. "
            "A tokenizer without a fill token lacks that choice. Old name: mask")


BASELINE_HELP = baseline_help()


def setting(default: Any, help: str) -> Any:
    """Return a dataclass field with a default and a help text (shown by `explain methods`)."""
    return dataclasses.field(default=default, metadata={"help": help})


def _coerce(method: str, key: str, raw: Any, hint: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    if raw.lower() in ("none", "auto", "") and type(None) in typing.get_args(hint):
        return None
    for typ in args:
        try:
            if typ is bool:
                if raw.lower() in ("1", "true", "yes", "on"):
                    return True
                if raw.lower() in ("0", "false", "no", "off"):
                    return False
                continue
            if typ in (int, float):
                return typ(raw)
            if typ is str:
                return raw
        except ValueError:
            continue
    raise MethodError(f"setting {method}.{key}={raw!r} is not a valid {hint}")
