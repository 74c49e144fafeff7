"""Photos with rendered Indonesian and English phrases, for the text reader's parity fixture
(record_text_parity.py) and its development evaluation (eval_text.py). Dev-only; needs Pillow and
the Debian font packages fonts-dejavu-core, fonts-liberation and fonts-noto-core.

A scene is a photo with one or more phrases drawn on it: on a plate (a sign or label of a
contrasting colour) or straight onto the picture, in one of several fonts, sizes and colours,
turned by up to ±8 degrees. Everything follows from the random seed.
"""
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIR = Path("/usr/share/fonts/truetype")
FONTS = [
    "dejavu/DejaVuSans-Bold.ttf",
    "dejavu/DejaVuSans.ttf",
    "dejavu/DejaVuSerif-Bold.ttf",
    "dejavu/DejaVuSansCondensed-Bold.ttf",
    "liberation/LiberationSans-Bold.ttf",
    "liberation/LiberationSans-Regular.ttf",
    "liberation/LiberationSerif-Bold.ttf",
    "liberation/LiberationSansNarrow-Bold.ttf",
    "liberation/LiberationMono-Bold.ttf",
    "noto/NotoSans-Bold.ttf",
    "noto/NotoSans-Regular.ttf",
    "noto/NotoSerif-Bold.ttf",
]

# (phrase, language). Signs, labels, notices.
PHRASES = [
    ("JALAN DITUTUP", "id"), ("DILARANG MEROKOK", "id"), ("Awas Anjing Galak", "id"),
    ("Buka 24 Jam", "id"), ("Harga Spesial", "id"), ("KELUAR", "id"), ("Toko Roti Enak", "id"),
    ("Parkir Khusus Tamu", "id"), ("Selamat Datang", "id"), ("Hati-hati Lantai Licin", "id"),
    ("DILARANG PARKIR", "id"), ("Kopi Susu Gula Aren", "id"), ("Sedang Ada Perbaikan", "id"),
    ("Jual Pulsa dan Token", "id"), ("Warung Makan Sederhana", "id"), ("Tarik", "id"),
    ("Dorong", "id"), ("Kamar Mandi", "id"), ("Jalur Evakuasi", "id"), ("Diskon Akhir Tahun", "id"),
    ("Pintu Darurat", "id"), ("Antre di Sini", "id"), ("Air Minum Gratis", "id"),
    ("Bengkel Motor", "id"),
    ("ROAD CLOSED", "en"), ("NO PARKING", "en"), ("Fresh Coffee", "en"), ("Open Daily", "en"),
    ("EXIT", "en"), ("Welcome to Jakarta", "en"), ("Keep Right", "en"), ("Private Property", "en"),
    ("Mind the Step", "en"), ("Wet Floor", "en"), ("Bakery and Cafe", "en"), ("Staff Only", "en"),
    ("Emergency Exit", "en"), ("Pharmacy", "en"), ("Free Wifi Inside", "en"), ("Bus Stop", "en"),
    ("Books and Records", "en"), ("Handmade Soap", "en"), ("Push to Open", "en"),
    ("Summer Sale", "en"),
]

PLATES = [(200, 30, 30), (250, 250, 245), (20, 90, 170), (30, 120, 60), (245, 200, 20),
          (30, 30, 30), (240, 120, 20)]


def _contrast(c):
    lum = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
    return (20, 20, 20) if lum > 140 else (250, 250, 250)


def _font(rng, size):
    return ImageFont.truetype(str(FONT_DIR / rng.choice(FONTS)), size)


def _label(rng, text, size, plate):
    """An RGBA image of the phrase: on a plate, or bare text with a thin outline."""
    font = _font(rng, size)
    left, top, right, bottom = font.getbbox(text)
    tw, th = right - left, bottom - top
    if plate:
        bg = rng.choice(PLATES)
        fg = _contrast(bg)
        px, py = int(size * rng.uniform(0.4, 0.9)), int(size * rng.uniform(0.3, 0.6))
        img = Image.new("RGBA", (tw + 2 * px, th + 2 * py), bg + (255,))
        d = ImageDraw.Draw(img)
        if rng.random() < 0.5:
            d.rectangle([3, 3, img.width - 4, img.height - 4], outline=fg + (255,), width=max(2, size // 16))
        d.text((px - left, py - top), text, font=font, fill=fg + (255,))
    else:
        fg = rng.choice([(255, 255, 255), (255, 230, 0), (20, 20, 20), (230, 30, 30), (0, 200, 255)])
        pad = max(4, size // 5)
        img = Image.new("RGBA", (tw + 2 * pad, th + 2 * pad), (0, 0, 0, 0))
        d = ImageDraw.Draw(img)
        outline = _contrast(fg)
        d.text((pad - left, pad - top), text, font=font, fill=fg + (255,),
               stroke_width=max(1, size // 18), stroke_fill=outline + (255,))
    return img


def draw_scene(photo: Image.Image, rng: random.Random, phrases, size_range=(20, 60)):
    """Draws each (phrase, lang) onto a copy of the photo; returns the image and the phrases
    placed (some may be dropped when they do not fit)."""
    img = photo.convert("RGB").copy()
    W, H = img.size
    placed, taken = [], []
    for text, lang in phrases:
        for _attempt in range(20):
            size = rng.randint(*size_range)
            label = _label(rng, text, size, plate=rng.random() < 0.65)
            angle = rng.uniform(-8, 8)
            label = label.rotate(angle, resample=Image.BICUBIC, expand=True)
            if label.width > W - 8 or label.height > H - 8:
                size_range = (size_range[0], max(size_range[0], size - 6))
                continue
            x = rng.randint(4, W - label.width - 4)
            y = rng.randint(4, H - label.height - 4)
            box = (x, y, x + label.width, y + label.height)
            if any(not (box[2] < b[0] or box[0] > b[2] or box[3] < b[1] or box[1] > b[3]) for b in taken):
                continue
            if rng.random() < 0.3:
                label = label.filter(ImageFilter.GaussianBlur(0.6))
            img.paste(label, (x, y), label)
            taken.append(box)
            placed.append({"text": text, "lang": lang, "size": size, "angle": round(angle, 2),
                           "box": list(box)})
            break
    return img, placed
