"""Create the sample photos in samples/ from scikit-image's bundled data (dev-only).

Run from the repository root:

    /work/devenv/venv/bin/python scripts/dev/make_samples.py

Writes samples/{astronaut,chelsea,coffee,rocket}.jpg (JPEG q90, 4:4:4 chroma,
long side <= 512 px, both sides cropped to a multiple of 8 px) and
samples/chelsea-exif-rotated.jpg: chelsea.jpg losslessly rotated 90 degrees
counter-clockwise with `jpegtran -rotate 270 -perfect` (DCT-domain, no
re-encoding) plus an EXIF APP1 segment with Orientation=6, so a viewer that
honours EXIF shows it like chelsea.jpg (same DCT coefficients; decoded
pixels can differ by a few levels because libjpeg's integer IDCT is not
transpose-symmetric in its rounding).  Needs `jpegtran`
(Debian: libjpeg-turbo-progs).
"""
import io
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import skimage
import skimage.data
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "samples"
NAMES = ["astronaut", "chelsea", "coffee", "rocket"]


def prepare(arr: np.ndarray) -> Image.Image:
    img = Image.fromarray(arr).convert("RGB")
    w, h = img.size
    if max(w, h) > 512:
        s = 512 / max(w, h)
        img = img.resize((round(w * s), round(h * s)), Image.Resampling.LANCZOS)
    w, h = img.size
    # crop to multiples of 8 so that jpegtran can rotate losslessly (-perfect)
    cw, ch = w - w % 8, h - h % 8
    left, top = (w - cw) // 2, (h - ch) // 2
    return img.crop((left, top, left + cw, top + ch))


def insert_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    assert jpeg[:2] == b"\xff\xd8"
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    payload = exif.tobytes()  # starts with b"Exif\0\0"
    seg = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    pos = 2
    # keep a leading JFIF APP0 (written by jpegtran) first, then EXIF APP1
    if jpeg[2:4] == b"\xff\xe0":
        pos = 4 + struct.unpack(">H", jpeg[4:6])[0]
    return jpeg[:pos] + seg + jpeg[pos:]


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for n in NAMES:
        img = prepare(getattr(skimage.data, n)())
        p = OUT / f"{n}.jpg"
        img.save(p, "JPEG", quality=90, subsampling=0, optimize=True)
        print(p.relative_to(ROOT), img.size, p.stat().st_size, "bytes")

    src = OUT / "chelsea.jpg"
    rot = subprocess.run(
        ["jpegtran", "-rotate", "270", "-perfect", "-copy", "none", "-optimize", str(src)],
        check=True, capture_output=True).stdout
    dst = OUT / "chelsea-exif-rotated.jpg"
    dst.write_bytes(insert_exif_orientation(rot, 6))

    a = np.asarray(Image.open(src).convert("RGB"))
    raw = Image.open(dst)
    b = np.asarray(ImageOps.exif_transpose(raw).convert("RGB"))
    print(dst.relative_to(ROOT), "stored", raw.size, "orientation", raw.getexif().get(0x0112),
          "upright", b.shape, "identical to chelsea.jpg:", a.shape == b.shape and bool((a == b).all()))
    if a.shape != b.shape:
        sys.exit("rotated variant has the wrong shape")
    d = np.abs(a.astype(int) - b.astype(int))
    # The DCT coefficients are identical (lossless transform), but libjpeg's
    # separable integer IDCT rounds differently on transposed blocks, so a few
    # decoded pixel values differ by a couple of levels.
    print("decoded pixels: max abs diff", d.max(), "differing values",
          int((d > 0).sum()), "of", d.size)
    print("skimage", skimage.__version__)


if __name__ == "__main__":
    main()
