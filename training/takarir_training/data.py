"""Flickr8k access: splits, captions per language, image preprocessing shared by caching and export."""
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("TAKARIR_DATA", ROOT.parent / "shared" / "data" / "flickr8k"))
CACHE = ROOT / "training" / "cache"
RUNS = ROOT / "training" / "runs"
LANGS = ("en", "id")

# EfficientNet-Lite was trained (TF reference builder) with mean 127, std 128 on 0..255 pixels.
IMAGE_SIZE = 224  # the default input side; a run may choose another (cfg "image_size")
RESCALE = 1 / 255
MEAN = [0.498, 0.498, 0.498]
STD = [0.502, 0.502, 0.502]


def split(name):
    """Image names of a split, skipping names without an image file."""
    names = (DATA / "splits" / f"{name}.txt").read_text().split()
    return [n for n in names if (DATA / "images" / n).exists()]


def captions(lang):
    """{image name: [5 raw captions]} for one language."""
    out = {}
    for line in (DATA / f"captions.{lang}.tsv").read_text(encoding="utf-8").splitlines():
        key, _, cap = line.partition("\t")
        out.setdefault(key.split("#")[0], []).append(cap.strip())
    return out


def grid_cells(size):
    """Cells of the CNN's final grid for a square input: stride 32 with 'same' padding rounds up."""
    return math.ceil(size / 32) ** 2


def feature_key(backbone, size, cut=None):
    """Cache file stem: the 224 cache keeps its original name, other sizes carry theirs; a cut (the input of
    block `cut`, for fine-tuning the blocks after it) adds _b<cut>."""
    return with_cut(backbone if size == IMAGE_SIZE else f"{backbone}_{size}", cut)


def with_cut(key, cut):
    """The cache key of block `cut`'s inputs next to the final grid's `key` (itself when cut is None)."""
    return key if cut is None else f"{key}_b{cut}"


def load_pixels(name, flip=False, size=IMAGE_SIZE):
    """float32 [3,size,size] exactly as preprocessor_config.json describes (resize bilinear, rescale, normalise)."""
    img = Image.open(DATA / "images" / name).convert("RGB")
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    if flip:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return normalise(img)


def normalise(img):
    """An RGB PIL image already at the input size -> float32 [3,H,W]: rescale, then mean/std per channel."""
    x = np.asarray(img, dtype=np.float32) * RESCALE
    x = (x - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    return x.transpose(2, 0, 1).copy()
