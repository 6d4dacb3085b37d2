"""Seeded data generators with a planted ground truth, shared by the training scripts and tests.

Each generator builds inputs whose answer is decided by exactly one planted cause (a sentiment
word, a cue word, a pasted digit), plus null inputs where that cause is absent or removed, plus
perturbation-style noise on everything else (see DESIGN.md, "Planted-truth models"). Training
on all three is what makes "remove the cause" flip the model to the null answer.

Held-out splits reuse the same planted causes but never the same *composition*: a filler-word
sequence belongs to exactly one split, decided by a stable hash of its words, and held-out digit
images come from load_digits indices that training never sees.

Pure python/numpy (plus scikit-learn and Pillow for the digit images); import it from tests by
putting `examples/` on sys.path.
"""
from __future__ import annotations

import functools
import random
import zlib

import numpy as np

SPLITS = ("train", "heldout")

# --- text classifier --------------------------------------------------------------------------

TEXT_FILLER = """the a an this that it its film movie story plot scene scenes actor actress
director cast camera script screen music score sound light color dialogue ending opening character
characters role roles hero city town house room street car train river sea forest night day morning
evening week year time minute hour moment people man woman child family friend friends mother
father brother sister team crowd audience critic studio theater show series episode season chapter
book version sequel remake title genre drama comedy thriller documentary western mystery was is are
were be been has have had does did goes went comes came takes took makes made sees saw plays played
shows showed runs ran walks walked talks talked looks looked seems seemed and or but then also just
still again almost about around with without from into onto over under after before during between
through near far here there where when while because so as of in on at by for to up down out off
very quite rather some many few more most every each other another first second third last next new
old long short young big small red blue green white black early late""".split()

POSITIVE_WORDS = """good great excellent wonderful delightful brilliant superb charming enjoyable
fantastic lovely amazing beautiful heartwarming memorable""".split()
NEGATIVE_WORDS = """bad awful terrible boring dull horrible unwatchable dreadful pointless
disappointing mediocre tedious clumsy bland forgettable""".split()

# Planted words that the bundled WordPiece vocabulary splits into several pieces, so that
# attribution methods must group pieces back into words. Every other word is one piece.
SENTIMENT_PIECES: dict[str, list[str]] = {
    "delightful": ["delight", "##ful"],
    "enjoyable": ["enjoy", "##able"],
    "heartwarming": ["heart", "##warm", "##ing"],
    "unwatchable": ["un", "##watch", "##able"],
    "dreadful": ["dread", "##ful"],
    "pointless": ["point", "##less"],
    "disappointing": ["disappoint", "##ing"],
}

SENTIMENT_LABELS = ("negative", "neutral", "positive")  # index == class id of the checkpoint
# How a planted word or a noise word is "removed" in training, with sampling weights. [PAD] is
# included because padding-token embeddings are a common attribution baseline.
_REMOVALS = ("[MASK]",) * 3 + ("[UNK]",) * 2 + ("[PAD]", None, None)  # None = drop the word

# --- causal LM --------------------------------------------------------------------------------

GPT_FILLER = """the a this that one some old young small big little red green brown gray white
black happy sleepy quiet loud farm barn field garden pond tree hill road fence house yard river
forest morning evening night day today again then now here there near by with and in on at under
over behind beside after before softly slowly quickly often always still just very really also
suddenly farmer child girl boy man woman friend neighbor teacher visitor walks runs sits stands
sleeps waits looks turns stays hides rests far two three every""".split()

ANIMAL_SOUNDS: dict[str, str] = {
    "cat": " meow", "dog": " woof", "cow": " moo", "duck": " quack",
    "owl": " hoot", "frog": " croak", "bee": " buzz", "lion": " roar",
}
NULL_ANSWER = " nothing"

# --- digits -----------------------------------------------------------------------------------

DIGIT_LABELS = tuple(str(d) for d in range(10)) + ("none",)
CANVAS = 32


def _rng(task: str, seed: int, split: str) -> random.Random:
    """Return a python RNG whose stream depends on task, seed and split (stable across runs)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return random.Random(f"{task}:{split}:{seed}")  # str seeds are hashed with sha512: stable


def split_of(words: list[str]) -> str:
    """Return the split ("train" or "heldout") that a filler-word composition belongs to."""
    return "heldout" if zlib.crc32(" ".join(words).encode()) % 5 == 0 else "train"


def _filler(rng: random.Random, vocab: list[str], lo: int, hi: int, split: str) -> list[str]:
    """Return lo..hi random filler words whose composition belongs to `split`."""
    while True:
        words = [rng.choice(vocab) for _ in range(rng.randint(lo, hi))]
        if split_of(words) == split:
            return words


def remove_word(text: str, word: str, replacement: str | None = None) -> str:
    """Return `text` with its first whole-word `word` replaced by `replacement` (None: dropped)."""
    words = text.split(" ")
    i = words.index(word)
    words[i:i + 1] = [] if replacement is None else [replacement]
    return " ".join(words)


def sentiment_examples(n: int, seed: int, split: str = "train"
                       ) -> list[tuple[str, str, str | None]]:
    """Return n (text, label_name, planted_word or None) sentiment examples.

    Mix: 50% positive/negative with one planted word; 20% neutral without one; 30% neutral where
    the planted word was replaced by [MASK]/[UNK]/[PAD] or dropped (planted_word is then None,
    since no sentiment word is left in the text). Half the sentences get noise: each filler
    word is masked, [UNK]-ed, [PAD]-ed or dropped with probability 0.15.
    """
    rng = _rng("sentiment", seed, split)
    out: list[tuple[str, str, str | None]] = []
    for _ in range(n):
        words: list[str | None] = list(_filler(rng, TEXT_FILLER, 5, 20, split))
        label, planted, at = "neutral", None, -1
        kind = rng.random()
        if kind >= 0.2:
            label = rng.choice(("positive", "negative"))
            planted = rng.choice(POSITIVE_WORDS if label == "positive" else NEGATIVE_WORDS)
            at = rng.randint(0, len(words))
            words.insert(at, planted)
            if kind < 0.5:  # the planted cause removed: the sentence must read as neutral
                label, planted = "neutral", None
                words[at] = rng.choice(_REMOVALS)
        if rng.random() < 0.5:
            words = [w if i == at or rng.random() >= 0.15 else rng.choice(_REMOVALS)
                     for i, w in enumerate(words)]
        text = " ".join(w for w in words if w is not None)
        out.append((text, label, planted))
    return out


def gpt_prompts(n: int, seed: int, split: str = "train") -> list[tuple[str, str, str | None]]:
    """Return n (prompt, answer_with_leading_space, cue_word or None) animal-sound prompts.

    A prompt is 4-16 filler words with at most one animal cue; the answer is the cue's sound, or
    " nothing" without a cue. There is no closing question word: the bundled GPT answers after
    any prompt (train_gpt.py trains the answer at every prefix), so the cue is the only word
    whose removal changes the answer. Mix: 65% with a cue; 20% never had one; 15% had one that
    was dropped. 30% of prompts also lose each filler word with probability 0.15.
    The cue may be any word, the first included: the bundled tokenizer adds a prefix space, so
    a sentence-initial "cat" is the same one byte-level BPE token " cat" as anywhere else.
    """
    rng = _rng("gpt", seed, split)
    out: list[tuple[str, str, str | None]] = []
    for _ in range(n):
        words = _filler(rng, GPT_FILLER, 4, 16, split)
        if rng.random() < 0.3:
            words = [w for w in words if rng.random() >= 0.15] or words[:1]
        cue: str | None = None
        kind = rng.random()
        if kind >= 0.2:
            cue = rng.choice(sorted(ANIMAL_SOUNDS))
            words.insert(rng.randint(0, len(words)), cue)
            if kind < 0.35:  # the cue dropped: the prompt must answer " nothing"
                words.remove(cue)
                cue = None
        answer = ANIMAL_SOUNDS[cue] if cue else NULL_ANSWER
        out.append((" ".join(words), answer, cue))
    return out


@functools.lru_cache(maxsize=None)
def _digit_bank(split: str) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Return ({size: float32 array (k, size, size) in 0..255}, targets) for one split's digits."""
    from PIL import Image
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    data = load_digits()
    idx = np.arange(len(data.images))
    idx = idx[(idx % 5 == 0) == (split == "heldout")]  # every 5th digit image is held out
    raw = [Image.fromarray((data.images[i] * (255 / 16)).astype(np.uint8)) for i in idx]
    bank = {s: np.stack([np.asarray(im.resize((s, s), Image.Resampling.BILINEAR), np.float32)
                         for im in raw])
            for s in (11, 12, 13)}
    return bank, data.target[idx]


def blur(img: np.ndarray, radius: float = 3.0) -> np.ndarray:
    """Return a Gaussian-blurred copy of a uint8 grayscale image."""
    from PIL import Image, ImageFilter

    return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius))).copy()


def cover(img: np.ndarray, box: tuple[int, int, int, int], fill: str | int = 128,
          radius: float = 3.0) -> np.ndarray:
    """Return a copy of img with box (y0, x0, y1, x1) filled with a grey level or "blur"-red."""
    y0, x0, y1, x1 = box
    out = img.copy()
    out[y0:y1, x0:x1] = blur(img, radius)[y0:y1, x0:x1] if fill == "blur" else fill
    return out


def _background(rng: np.random.Generator) -> np.ndarray:
    """Return a float 32x32 cluttered background: dark level, noise, faint strokes and blocks."""
    level = rng.uniform(0, 70)
    img = level + rng.normal(0, rng.uniform(3, 15), (CANVAS, CANVAS))
    for _ in range(rng.integers(0, 4)):  # faint straight strokes, dimmer than any digit
        (y0, x0), (y1, x1) = rng.integers(0, CANVAS, (2, 2))
        t = np.linspace(0, 1, 2 * CANVAS)
        img[np.round(y0 + t * (y1 - y0)).astype(int), np.round(x0 + t * (x1 - x0)).astype(int)] \
            += rng.uniform(20, 60)
    for _ in range(rng.integers(0, 3)):  # faint blocks
        y, x, h, w = rng.integers(0, CANVAS, 2).tolist() + rng.integers(3, 10, 2).tolist()
        img[y:y + h, x:x + w] += rng.uniform(-30, 30)
    return img


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int] | None) -> bool:
    """Return whether boxes a and b (y0, x0, y1, x1; exclusive ends) intersect."""
    return b is not None and a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _random_cover(rng: np.random.Generator, img: np.ndarray, box: tuple[int, int, int, int],
                  how: str, vary_radius: bool = False) -> np.ndarray:
    """Return img with box covered: "grey" (random level 100-156), "black" or "blur"."""
    fill: str | int = 0 if how == "black" else int(rng.integers(100, 157)) if how == "grey" \
        else "blur"
    return cover(img, box, fill, radius=float(rng.uniform(2.5, 4.0)) if vary_radius else 3.0)


def digit_images(n: int, seed: int, split: str = "train"
                 ) -> list[tuple[np.ndarray, str, tuple[int, int, int, int] | None]]:
    """Return n (uint8 32x32 image, label_name, digit box (y0, x0, y1, x1) or None) examples.

    Mix: 75% one load_digits digit (upscaled to 11-13 px) pasted at a random place on clutter,
    labelled with the digit; 25% "none": no digit (10%) or the digit's box filled grey (5%),
    black (5%) or blurred (5%); box is None whenever no digit is visible. Half the images also
    get 1-2 grey/black/blurred noise blocks (6-14 px) that never touch a visible digit.
    """
    bank, targets = _digit_bank(split)
    rng = np.random.default_rng([seed, SPLITS.index(split), 7])
    out: list[tuple[np.ndarray, str, tuple[int, int, int, int] | None]] = []
    for _ in range(n):
        img = _background(rng)
        label, box = "none", None
        kind = rng.random()
        if kind >= 0.10:
            i, s = rng.integers(len(targets)), int(rng.integers(11, 14))
            y0, x0 = rng.integers(0, CANVAS - s + 1, 2).tolist()
            box = (y0, x0, y0 + s, x0 + s)
            img[y0:y0 + s, x0:x0 + s] = np.maximum(img[y0:y0 + s, x0:x0 + s],
                                                   bank[s][i] * rng.uniform(0.7, 1.0))
            label = DIGIT_LABELS[targets[i]]
        img = np.clip(img, 0, 255).astype(np.uint8)
        if box is not None and kind < 0.25:  # the digit removed: the image must read as "none"
            how = ("grey", "black", "blur")[int((kind - 0.10) / 0.05)]
            img = _random_cover(rng, img, box, how, vary_radius=True)
            label, box = "none", None
        if rng.random() < 0.5:  # noise blocks; up to 20 tries each to miss the visible digit
            for _ in range(rng.integers(1, 3)):
                for _try in range(20):
                    h, w = rng.integers(6, 15, 2).tolist()
                    y = int(rng.integers(0, CANVAS - h + 1))
                    x = int(rng.integers(0, CANVAS - w + 1))
                    if not _overlaps((y, x, y + h, x + w), box):
                        how = str(rng.choice(["grey", "black", "blur"]))
                        img = _random_cover(rng, img, (y, x, y + h, x + w), how)
                        break
        out.append((img, label, box))
    return out


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch, and pin torch to 2 CPU threads (used by the trainers)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(2)
