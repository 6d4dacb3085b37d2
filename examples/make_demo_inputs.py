"""Write the demo's inputs (examples/demo_inputs/) from the planted-truth generators, seeded.

    python examples/make_demo_inputs.py

Reviews and prompts are held-out compositions the bundled models never saw in training;
digit images are held-out digits on cluttered canvases, one of them enlarged to RGB 96 x 96 to
show that any image size works and attributions come back at the image's own resolution.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from planted_data import digit_images, gpt_prompts, sentiment_examples

OUT = Path(__file__).resolve().parent / "demo_inputs"


def main() -> None:
    """Write reviews.txt, prompts.txt and digits/*.png."""
    OUT.mkdir(exist_ok=True)
    rows = sentiment_examples(200, seed=7, split="heldout")
    pick = [next(r for r in rows if r[1] == "positive"), next(r for r in rows if r[1] == "negative")]
    pick += [next(r for r in rows if r[2] in ("unwatchable", "delightful", "heartwarming"))]
    pick += [next(r for r in rows if r[1] == "neutral")]
    (OUT / "reviews.txt").write_text("".join(t + "\n" for t, _, _ in pick), encoding="utf-8")
    prompts = [p for p, _, cue in gpt_prompts(50, seed=7, split="heldout") if cue][:3]
    (OUT / "prompts.txt").write_text("".join(p + "\n" for p in prompts), encoding="utf-8")
    digits = OUT / "digits"
    digits.mkdir(exist_ok=True)
    images = digit_images(60, seed=7, split="heldout")
    chosen = [r for r in images if r[1] != "none"][:3] + [next(r for r in images if r[1] == "none")]
    for k, (img, label, _) in enumerate(chosen):
        pic = Image.fromarray(img, mode="L")
        if k == 0:  # any size, any mode: the model's preprocessing resizes and converts
            pic = pic.resize((96, 96), Image.Resampling.NEAREST).convert("RGB")
        pic.save(digits / f"digit-{k}-{label}.png")


if __name__ == "__main__":
    main()
