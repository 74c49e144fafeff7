"""Fit the review confidence of grounded captions: a logistic map from grounding's review features to the
chance that a caption names no object that is absent from the photo.

Dev tooling (run with training/.venv, which has numpy). Inputs are `takarir caption DIR --jsonl --tokens`
outputs (the `--tokens` records carry `review_features`) on dev photos, one file per set and language:

    python scripts/dev/fit_review.py --vision models/default/vision.json \
        --coco ../shared/data/coco-dev OUT/coco_en.jsonl OUT/coco_id.jsonl \
        --flickr ../shared/data/flickr8k OUT/f8_en.jsonl OUT/f8_id.jsonl [--write]

A caption hallucinates when it names (through the lexicon of vision.json, in its own language) a COCO class
that is neither labelled in the photo (coco-dev's objects.tsv) nor named by any of its reference captions
(in either language), as CHAIR counts. Fitting uses half of each set (photos whose name hashes even);
the other half only reports, so the printed figures are held out. --write stores the weights and the
threshold (the lowest that catches at least 80% of the held-out hallucinating captions) in vision.json's `grounding` section.
"""
import argparse
import collections
import hashlib
import json
import re
from pathlib import Path


IRREGULAR = {"man": "men", "woman": "women", "child": "children", "person": "people", "mouse": "mice",
             "knife": "knives", "calf": "calves", "goose": "geese", "ox": "oxen"}


def plural(w):
    head, _, last = w.rpartition(" ")
    if last in IRREGULAR:
        p = IRREGULAR[last]
    elif last.endswith(("s", "x", "ch", "sh")):
        p = last + "es"
    elif last.endswith("y") and last[-2:-1] not in "aeiou":
        p = last[:-1] + "ies"
    else:
        p = last + "s"
    return (head + " " + p).strip()


class Lexicon:
    """Class mentions in a caption, longest phrase first (as the engine's lexicon reads them)."""

    def __init__(self, vision):
        self.phrases = {"en": [], "id": []}
        for c in vision["classes"]:
            for lang in ("en", "id"):
                for w in c["words"][lang]:
                    forms = {w, plural(w)} if lang == "en" else {w}
                    for f in forms:
                        self.phrases[lang].append((f.split(), c["name"]))
        for p in self.phrases.values():
            p.sort(key=lambda x: -len(x[0]))

    def mentions(self, text, lang):
        ws = [w.strip("-'") for w in re.split(r"[^\w'-]+", text.lower()) if w.strip("-'")]
        if lang == "id":  # reduplicated plurals: kucing-kucing → kucing
            ws = [w.split("-")[0] if "-" in w and len(set(w.split("-"))) == 1 else w for w in ws]
        out, i = set(), 0
        while i < len(ws):
            step = 1
            for ph, c in self.phrases[lang]:
                if ws[i:i + len(ph)] == ph:
                    out.add(c)
                    step = len(ph)
                    break
            i += step
        return out


def references(path):
    refs = collections.defaultdict(list)
    for line in open(path, encoding="utf-8"):
        key, _, text = line.rstrip("\n").partition("\t")
        refs[key.split("#")[0]].append(text)
    return refs


def truth(lex, data_dir, with_objects):
    d = Path(data_dir)
    seen = collections.defaultdict(set)
    for lang in ("en", "id"):
        f = d / f"captions.{lang}.tsv"
        if f.exists():
            for img, caps in references(f).items():
                for c in caps:
                    seen[img] |= lex.mentions(c, lang)
    if with_objects:
        for line in list(open(d / "objects.tsv"))[1:]:
            img, cls, _ = line.rstrip("\n").split("\t")
            seen[img].add(cls)
    return seen


def load(lex, jsonl, seen, lang):
    rows = []
    for line in open(jsonl):
        r = json.loads(line)
        if not r.get("captions"):
            continue
        c = r["captions"][0]
        name = Path(r["file"]).name
        named = lex.mentions(c["text"], lang)
        rows.append((name, c["review_features"], bool(named - seen[name])))
    return rows


def fit(x, y, l2=1e-2, steps=3000, lr=0.5):
    import numpy as np

    xb = np.hstack([np.ones((len(x), 1)), x])
    mu, sd = xb.mean(0), xb.std(0) + 1e-6
    mu[0], sd[0] = 0.0, 1.0
    z = (xb - mu) / sd
    w = np.zeros(z.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-z @ w))
        g = z.T @ (p - y) / len(y) + l2 * np.r_[0, w[1:]]
        w -= lr * g
    # Back to raw features: w·(x-mu)/sd.
    raw = w / sd
    raw[0] = w[0] - (w[1:] * mu[1:] / sd[1:]).sum()
    return raw


def predict(w, x):
    import numpy as np

    return 1 / (1 + np.exp(-(w[0] + x @ w[1:])))


def main():
    import numpy as np  # only here: chair_lexicon.py imports the lexicon without numpy

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vision", required=True)
    ap.add_argument("--coco", nargs=3, metavar=("DIR", "EN_JSONL", "ID_JSONL"))
    ap.add_argument("--flickr", nargs=3, metavar=("DIR", "EN_JSONL", "ID_JSONL"))
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--check", action="store_true",
                    help="no fitting: how the weights and threshold in vision.json do on every given caption")
    a = ap.parse_args()
    vision = json.load(open(a.vision))
    lex = Lexicon(vision)
    sets = {}
    for name, spec, objects in (("coco", a.coco, True), ("flickr", a.flickr, False)):
        if spec:
            seen = truth(lex, spec[0], objects)
            sets[name] = load(lex, spec[1], seen, "en") + load(lex, spec[2], seen, "id")
    if a.check:
        g = vision.get("grounding", {})
        w, t = np.array(g["review_weights"]), g["review_threshold"]
        for name, rows in list(sets.items()) + [("all", [r for rows in sets.values() for r in rows])]:
            c = predict(w, np.array([r[1] for r in rows], dtype=np.float64))
            h = np.array([r[2] for r in rows])
            f = c < t
            print(f"{name}: {len(rows)} captions, {int(h.sum())} hallucinating; needs_review (confidence < {t}) "
                  f"catches {f[h].mean():.3f} of them and flags {f.mean():.3f} of all")
            if name == "all":
                print("confidence bin | captions | mean confidence | share clean")
                for lo in np.arange(0, 1, 0.2):
                    m = (c >= lo) & (c < lo + 0.2 + (lo >= 0.8) * 1e-9)
                    if m.any():
                        print(f"{lo:.1f}-{lo + 0.2:.1f} | {m.sum()} | {c[m].mean():.3f} | {1 - h[m].mean():.3f}")
        return
    fit_rows, held = [], collections.defaultdict(list)
    for name, rows in sets.items():
        for r in rows:
            (fit_rows if int(hashlib.sha1(r[0].encode()).hexdigest(), 16) % 2 == 0 else held[name]).append(r)
    x = np.array([r[1] for r in fit_rows], dtype=np.float64)
    y = np.array([0.0 if r[2] else 1.0 for r in fit_rows])  # 1 = names nothing absent
    w = fit(x, y)
    all_held = [r for rows in held.values() for r in rows]
    hx = np.array([r[1] for r in all_held], dtype=np.float64)
    hy = np.array([r[2] for r in all_held])
    conf = predict(w, hx)
    print(f"fit on {len(fit_rows)} captions ({int((1 - y).sum())} hallucinating); held out {len(all_held)} "
          f"({int(hy.sum())} hallucinating)")
    # Reliability on held-out captions: predicted confidence against the observed share of clean captions.
    print("confidence bin | captions | mean confidence | share clean")
    for lo in np.arange(0, 1, 0.2):
        m = (conf >= lo) & (conf < lo + 0.2 + (lo >= 0.8) * 1e-9)
        if m.any():
            print(f"{lo:.1f}-{lo + 0.2:.1f} | {m.sum()} | {conf[m].mean():.3f} | {1 - hy[m].mean():.3f}")
    # The threshold: the lowest that catches >= 80% of the held-out hallucinating captions (the
    # issue asks >= 70% while flagging <= 40%; the margin is for photos unlike these).
    print("threshold | caught | flagged")
    best = None
    for t in np.linspace(0.05, 0.99, 95):
        flag = conf < t
        caught = float(flag[hy].mean()) if hy.any() else 0.0
        rate = float(flag.mean())
        if round(t * 100) % 5 == 0:
            print(f"{t:.2f} | {caught:.3f} | {rate:.3f}")
        if best is None and caught >= 0.80:
            best = (float(t), caught, rate)
    t, caught, rate = best
    print(f"threshold {t:.2f}: needs_review catches {caught:.3f} of hallucinating captions, flags {rate:.3f}")
    for name, rows in held.items():
        c = predict(w, np.array([r[1] for r in rows], dtype=np.float64))
        h = np.array([r[2] for r in rows])
        f = c < t
        print(f"  {name}: {len(rows)} captions, {int(h.sum())} hallucinating, caught "
              f"{(f[h].mean() if h.any() else float('nan')):.3f}, flagged {f.mean():.3f}")
    print("weights", [round(float(v), 4) for v in w])
    if a.write:
        vision.setdefault("grounding", {})
        vision["grounding"]["review_weights"] = [round(float(v), 5) for v in w]
        vision["grounding"]["review_threshold"] = round(t, 3)
        Path(a.vision).write_text(json.dumps(vision, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print("wrote", a.vision)


if __name__ == "__main__":
    main()
