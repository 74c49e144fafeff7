"""Development evaluation of the text reader (issue 21). Dev-only: needs ../shared (Flickr8k), Pillow,
the fonts text_scenes.py names, and the engine's example built in release:

    cargo build --release -p takarir-engine --example read_text
    python3 scripts/dev/eval_text.py [--out /tmp/takarir-text-eval] [--threads 2]

1. Text photos: the first 40 Flickr8k dev-split photos, each with one rendered phrase (20
   Indonesian, 20 English; fonts, sizes 18-56 px, colours, plates or bare text, up to ±8°),
   written under --out (never into the project). Measured at the shipped threshold:
   - word recall of the rendered phrase (case-insensitive; words matched as a multiset against
     the whole text read), acceptance >= 0.85;
   - how often the composed caption (default model caption + text::compose_caption) quotes the
     phrase, in English and in Indonesian, acceptance >= 70%.
2. Photos without rendered text: the first 200 photos of the Flickr8k test split; the share with
   at least one line at each threshold (acceptance <= 5% at the shipped one). Some of these
   photos hold real writing (shirts, signs); the lines found are listed for inspection.

Prints a JSON summary and writes details to --out/results.json.
"""
import argparse
import json
import random
import re
import subprocess
from pathlib import Path

from PIL import Image

from text_scenes import PHRASES, draw_scene

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "flickr8k"
EXAMPLE = ROOT / "target" / "release" / "examples" / "read_text"
THRESHOLDS = [0.5, 0.6, 0.7, 0.8, 0.85, 0.9]


def words(s):
    return re.findall(r"[\w%'-]+", s.lower())


READER_ARGS = []


def run_reader(files, extra, threads):
    out = subprocess.run([str(EXAMPLE), "--threads", str(threads), *READER_ARGS, *extra, *map(str, files)],
                         check=True, capture_output=True, text=True).stdout
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def recall(phrase, text):
    want = words(phrase)
    have = words(text)
    hit = 0
    for w in want:
        if w in have:
            have.remove(w)
            hit += 1
    return hit, len(want)


def quoted(phrase, caption):
    quotes = re.findall(r"“([^”]*)”", caption)
    p = " ".join(phrase.lower().split())
    return any(p in " ".join(q.lower().split()) for q in quotes)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("/tmp/takarir-text-eval"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-spurious", action="store_true")
    ap.add_argument("--reader-args", default="", help="extra arguments for the example, e.g. '--det-max-side 512'")
    a = ap.parse_args()
    READER_ARGS.extend(a.reader_args.split())
    a.out.mkdir(parents=True, exist_ok=True)

    # 1. Text photos.
    names = (SHARED / "splits" / "dev.txt").read_text().split()[:40]
    id_phrases = [p for p in PHRASES if p[1] == "id"]
    en_phrases = [p for p in PHRASES if p[1] == "en"]
    rng = random.Random(40)
    rng.shuffle(id_phrases)
    rng.shuffle(en_phrases)
    photos, meta = [], {}
    for i, name in enumerate(names):
        phrase = (id_phrases if i % 2 == 0 else en_phrases)[i // 2 % 20]
        bg = Image.open(SHARED / "images" / name)
        img, placed = draw_scene(bg, random.Random(1000 + i), [phrase], size_range=(18, 56))
        assert placed, name
        f = a.out / f"text-{i:02d}.png"
        img.save(f)
        photos.append(f)
        meta[str(f)] = placed[0]
    rows = run_reader(photos, ["--captions"], a.threads)
    hits = total = 0
    quote = {"en": 0, "id": 0}
    details = []
    for r in rows:
        m = meta[r["file"]]
        h, n = recall(m["text"], r["text"])
        hits += h
        total += n
        q = {lang: quoted(m["text"], r[lang]["composed"]) for lang in ("en", "id")}
        for lang in q:
            quote[lang] += q[lang]
        details.append({"file": r["file"], "phrase": m, "read": r["text"],
                        "lines": [(l["text"], l["confidence"]) for l in r["lines"]],
                        "en": r["en"], "id": r["id"], "quoted": q, "recall": [h, n]})
    summary = {
        "text_photos": len(rows),
        "word_recall": hits / total,
        "quote_rate": {k: v / len(rows) for k, v in quote.items()},
        "mean_timings_ms": {k: sum(r["timings"][k] for r in rows) / len(rows)
                            for k in rows[0]["timings"]},
    }

    # 2. Photos without rendered text.
    if not a.skip_spurious:
        names = (SHARED / "splits" / "test.txt").read_text().split()[:200]
        files = [SHARED / "images" / n for n in names]
        rows0 = run_reader(files, ["--min-confidence", "0.5"], a.threads)
        rates = {}
        for t in THRESHOLDS:
            rates[str(t)] = sum(any(l["confidence"] >= t for l in r["lines"]) for r in rows0) / len(rows0)
        summary["spurious_photos"] = len(rows0)
        summary["spurious_rate_by_threshold"] = rates
        found = [{"file": Path(r["file"]).name, "lines": [(l["text"], l["confidence"]) for l in r["lines"]]}
                 for r in rows0 if r["lines"]]
        details.append({"spurious_lines": found})
    (a.out / "results.json").write_text(json.dumps({"summary": summary, "details": details},
                                                   indent=1, ensure_ascii=False))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
