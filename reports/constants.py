"""Numbers and palettes every part of the report shares: thresholds, colour scales, sizes, titles.

One module so the page, the Jupyter view, the index and the tests read the same values.
"""

from __future__ import annotations

# Diverging scale for signed scores, centred at 0 (ColorBrewer RdBu, reversed: red supports).
COLORSCALE: list[tuple[float, str]] = [(0.0, "#2166ac"), (0.25, "#67a9cf"), (0.5, "#f7f7f7"), (0.75, "#ef8a62"), (1.0, "#b2182b")]
# Attention weights: sequential, fixed 0-1, zero the quiet (near-white) end, so the many weights near 0
# recede and the few large ones stand out; one hue (ColorBrewer Purples), neither the red nor the blue of
# supports/opposes. (Reversed viridis painted 0 saturated yellow, the loudest colour on the page.)
ATTENTION_SCALE: list[tuple[float, str]] = [
    (0.0, "#fcfbfd"), (0.25, "#dadaeb"), (0.5, "#9e9ac8"), (0.75, "#6a51a3"), (1.0, "#3f007d"),
]
# Agreement between methods (0-1): its own sequential palette (greys to green), never the score palette.
AGREE_SCALE: list[tuple[float, str]] = [(0.0, "#f2f2f2"), (0.5, "#a1d99b"), (1.0, "#238b45")]

# Weak evidence: an explanation whose largest |score| is within this many times the noise floor its
# method measured on the input (explain/reports/evidence.py) is drawn grey with a sentence: its
# scores cannot be told apart from how much the estimate itself moves.
WEAK = 2.0

# Image overlays: the top CLIP_PERCENT % of |score| is clipped to the colour scale's end (captum's
# visualize_image_attr clips the top 2% by default), so one extreme pixel cannot wash out the map.
CLIP_PERCENT = 1.0
MIN_PANEL = 256  # image panels are at least this many CSS pixels wide

# Only for results without self_checks (schema 1): |convergence delta| / |f(x) - f(baseline)| above this fails
# IG's completeness. Newer results carry IG's own verdict (1% of the output change, at least 1e-4).
IG_DELTA_LIMIT = 0.05
FIRST_SCREEN = 6  # inputs whose answer card is on the first screen

METHOD_TITLES = {
    "ig": "Integrated Gradients",
    "shap": "SHAP",
    "lime": "LIME",
    "attention": "Attention relevance",
    "ablation": "Ablation",
    "occlusion": "Occlusion",
    "gradcam": "Grad-CAM",
    "saliency": "Saliency",
    "gradient_shap": "GradientSHAP",
    "deeplift": "DeepLIFT",
}
# Methods whose scores are not changes of the model's output (no output units, no no-evidence test).
UNITLESS = ("attention", "gradcam", "saliency")

OUTPUT_UNITS = {"probability": "p", "logit": "logit", "log-probability": "log p"}


def units(method: str, output: str | None, label: str) -> str:
    """Return what one score of `method` measures, e.g. 'contribution to p(positive)' or 'relevance'.

    'Contribution to', not 'change in': one word's score can exceed the output's own change when
    other words cancel it (IG: +1.37 on p for a word, the scores summing to the real change).
    """
    if method in UNITLESS:
        return "Grad-CAM activation" if method == "gradcam" else "relevance"
    unit = OUTPUT_UNITS.get(str(output or ""), "output")
    return f"contribution to {unit}({label})"
