"""Makes fixtures/text-bench/signs-1mp.jpg, the photo `takarir bench --text` times text reading on:
about one megapixel (1224x816) with a few lines of text. Dev-only; needs Pillow and the fonts
text_scenes.py names.

    python3 scripts/dev/make_text_bench_photo.py

The background is samples/coffee.jpg (CC0, see samples/PROVENANCE.md) enlarged with Pillow's
LANCZOS filter; three phrases are drawn with text_scenes.draw_scene (seed 1224). Saved as JPEG,
quality 90.
"""
import random
from pathlib import Path

from PIL import Image

from text_scenes import draw_scene

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "fixtures" / "text-bench"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    bg = Image.open(ROOT / "samples" / "coffee.jpg").convert("RGB").resize((1224, 816), Image.LANCZOS)
    rng = random.Random(1224)
    phrases = [("JALAN DITUTUP", "id"), ("Fresh Coffee", "en"), ("Buka 24 Jam", "id")]
    img, placed = draw_scene(bg, rng, phrases, size_range=(40, 72))
    img.save(OUT / "signs-1mp.jpg", quality=90)
    print([p["text"] for p in placed])


if __name__ == "__main__":
    main()
