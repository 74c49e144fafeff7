"""A simulated consented set for trying the fine-tune's gates before real users consent: N Flickr8k dev photos, one of
their captions per photo posing as the user's correction, written as `takarir training export` writes (images as PNG
named by pseudonym, captions.LANG.tsv, splits with one in five held back, manifest.json), plus `flickr_names.txt`:
the Flickr8k names used, which `finetune --flickr-exclude` keeps out of the Flickr8k gate and training.

    python -m takarir_training.simulate_export --to /tmp/sim-export --photos 300 --id-share 0.5
"""
import argparse
import hashlib
import json
import random
import time
from pathlib import Path

from PIL import Image

from .data import DATA


def simulate(flickr, to, photos=300, id_share=0.5, seed=1234):
    flickr, to = Path(flickr), Path(to)
    if to.exists() and any(to.iterdir()):
        raise SystemExit(f"{to} is not empty")
    (to / "images").mkdir(parents=True)
    (to / "splits").mkdir()
    caps = {}
    for lang in ("en", "id"):
        for line in (flickr / f"captions.{lang}.tsv").read_text(encoding="utf-8").splitlines():
            k, _, c = line.partition("\t")
            caps.setdefault(lang, {}).setdefault(k.split("#")[0], []).append(c.strip())
    dev = [n for n in (flickr / "splits" / "dev.txt").read_text().split() if (flickr / "images" / n).exists()]
    rng = random.Random(seed)
    chosen = sorted(rng.sample(dev, min(photos, len(dev))))
    lines = {"en": [], "id": []}
    entries, train, held = [], [], []
    for n in chosen:
        pid = hashlib.sha256(f"simulated:{seed}:{n}".encode()).hexdigest()[:32]
        lang = "id" if rng.random() < id_share else "en"
        caption = rng.choice(caps[lang][n])
        Image.open(flickr / "images" / n).convert("RGB").save(to / "images" / f"{pid}.png")
        lines[lang].append(f"{pid}.png#0\t{' '.join(caption.split())}")
        split = "dev" if int(pid[:2], 16) % 5 == 0 else "train"  # as the service holds back
        (held if split == "dev" else train).append(f"{pid}.png")
        entries.append({"id": pid, "lang": lang, "consent_version": "simulated", "split": split})
    for lang, ls in lines.items():
        if ls:
            (to / f"captions.{lang}.tsv").write_text("\n".join(ls) + "\n", encoding="utf-8")
    (to / "splits" / "train.txt").write_text("".join(f"{x}\n" for x in train))
    (to / "splits" / "dev.txt").write_text("".join(f"{x}\n" for x in held))
    count = lambda es: {lang: sum(1 for e in es if e["lang"] == lang) for lang in ("en", "id")}  # noqa: E731
    entries.sort(key=lambda e: e["id"])
    (to / "manifest.json").write_text(json.dumps({
        "format": "takarir-training-export/1", "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "items": len(entries), "per_language": count(entries),
        "held_back_per_language": count([e for e in entries if e["split"] == "dev"]),
        "consent_versions": {"simulated": len(entries)}, "entries": entries}, indent=1) + "\n")
    (to / "flickr_names.txt").write_text("\n".join(chosen) + "\n")
    return entries


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--flickr", default=str(DATA))
    p.add_argument("--to", required=True)
    p.add_argument("--photos", type=int, default=300)
    p.add_argument("--id-share", type=float, default=0.5, help="share of items captioned in Indonesian")
    p.add_argument("--seed", type=int, default=1234)
    a = p.parse_args(argv)
    entries = simulate(a.flickr, a.to, a.photos, a.id_share, a.seed)
    print(json.dumps({"to": a.to, "items": len(entries)}))


if __name__ == "__main__":
    main()
