"""Records what the Python `rapidocr` package reads on a set of photos with rendered Indonesian and
English phrases, so the Rust text reader's test (crates/engine/tests/text_parity.rs) can demand
the same lines, text and boxes in CI without Python. Dev-only: run it in a venv of its own with
`pip install rapidocr==3.10.0 onnxruntime==1.32.0` (never in the project's .venv), and the font
packages text_scenes.py names.

    /work/venvs/ocr/bin/python scripts/dev/record_text_parity.py

Writes fixtures/text-parity/NN.webp (lossless, so both readers see identical pixels: the
backgrounds are the repo's samples/ photos and drawn gradients) and expected.json
({file: {"phrases": [...placed...], "lines": [{text, confidence, polygon}], "lines_shipped": [...]}})
with two threads: "lines" with the package's default configuration (text_score 0.5, detector
short side >= 736), "lines_shipped" with Takarir's shipped settings (text_score 0.8, detector long
side <= 640: Det.limit_type max, Det.limit_side_len 640).
"""
import json
import random
from importlib.metadata import version
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from rapidocr import RapidOCR

from text_scenes import PHRASES, draw_scene

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "fixtures" / "text-parity"
SAMPLES = ["astronaut", "chelsea", "coffee", "rocket"]
SHIPPED_TEXT_SCORE = 0.8
SHIPPED_DET_MAX_SIDE = 640


def read(engine, path):
    r = engine(str(path))
    lines = []
    if r.boxes is not None and len(r.boxes):
        for box, txt, score in zip(r.boxes.tolist(), r.txts, r.scores):
            lines.append({"text": txt, "confidence": round(float(score), 5),
                          "polygon": [[round(float(x), 3), round(float(y), 3)] for x, y in box]})
    return lines


def drawn_background(rng: random.Random, w=512, h=336) -> Image.Image:
    """A gradient with soft shapes and noise: a stand-in for a wall or a street."""
    a = np.array([rng.randint(0, 255) for _ in range(3)], np.float32)
    b = np.array([rng.randint(0, 255) for _ in range(3)], np.float32)
    t = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    img = (a * (1 - t) + b * t) * np.ones((h, 1, 1), np.float32)
    noise = np.random.default_rng(rng.randint(0, 2**31)).normal(0, 6, (h, w, 3))
    im = Image.fromarray(np.clip(img + noise, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(im)
    for _ in range(6):
        x, y = rng.randint(0, w), rng.randint(0, h)
        r = rng.randint(20, 120)
        d.ellipse([x - r, y - r, x + r, y + r], fill=tuple(rng.randint(0, 255) for _ in range(3)))
    return im.filter(ImageFilter.GaussianBlur(2))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    common = {
        "EngineConfig.onnxruntime.intra_op_num_threads": 2,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        "Global.log_level": "warning",
    }
    engine = RapidOCR(params=common)
    shipped = RapidOCR(params={**common, "Global.text_score": SHIPPED_TEXT_SCORE,
                               "Det.limit_type": "max", "Det.limit_side_len": SHIPPED_DET_MAX_SIDE})
    rng = random.Random(21)
    expected = {}
    n = 0
    for round_ in range(3):
        backgrounds = [Image.open(ROOT / "samples" / f"{s}.jpg") for s in SAMPLES]
        backgrounds.append(drawn_background(rng))
        for bg in backgrounds:
            phrases = rng.sample(PHRASES, rng.randint(1, 3))
            img, placed = draw_scene(bg, rng, phrases, size_range=(16, 48))
            name = f"{n:02d}.webp"
            img.save(OUT / name, lossless=True, quality=100, method=6)
            n += 1
            lines = read(engine, OUT / name)
            expected[name] = {"phrases": placed, "lines": lines,
                              "lines_shipped": read(shipped, OUT / name)}
            print(name, [p["text"] for p in placed], "->", [l["text"] for l in lines])
    meta = {"rapidocr": version("rapidocr"), "onnxruntime": version("onnxruntime"),
            "opencv-python-headless": version("opencv-python-headless"), "numpy": version("numpy"),
            "pyclipper": version("pyclipper"), "text_score": 0.5,
            "shipped": {"text_score": SHIPPED_TEXT_SCORE, "det_limit_type": "max",
                        "det_limit_side_len": SHIPPED_DET_MAX_SIDE}}
    (OUT / "expected.json").write_text(json.dumps({"reference": meta, "images": expected},
                                                  indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
