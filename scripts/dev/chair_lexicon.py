"""CHAIR-style figures for captions in any language the vision bundle's lexicon knows (Indonesian too), and the
en/id agreement: does the caption in one language name the same COCO classes as in the other?

    python3 scripts/dev/chair_lexicon.py models/default/vision.json ../shared/data/coco-dev \
        OUT/coco_id.jsonl id [OUT/coco_en.jsonl en]

A mention is hallucinated when its class is neither labelled in the photo (objects.tsv) nor named by one of its
reference captions, as `../shared/tools/chair.py` counts for English; recall_salient is the share of the
classes covering >= 5% of a photo that the caption names. Mentions are read with the lexicon of vision.json
(the one the engine grounds with), so the English figures differ slightly from chair.py's own word list.
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fit_review import Lexicon, truth  # noqa: E402


def first_captions(path):
    out = {}
    for line in open(path):
        r = json.loads(line)
        if r.get("captions"):
            out[Path(r["file"]).name] = r["captions"][0]["text"]
    return out


def main():
    if len(sys.argv) not in (5, 7):
        print(__doc__)
        sys.exit(2)
    vision, data = json.load(open(sys.argv[1])), Path(sys.argv[2])
    lex = Lexicon(vision)
    seen = truth(lex, data, True)
    salient = {}
    for line in list(open(data / "objects.tsv"))[1:]:
        img, cls, area = line.rstrip("\n").split("\t")
        if float(area) >= 0.05:
            salient.setdefault(img, set()).add(cls)
    caps, lang = first_captions(sys.argv[3]), sys.argv[4]
    ment = hall = caps_hall = sal = sal_named = 0
    for img, text in caps.items():
        named = lex.mentions(text, lang)
        bad = named - seen[img]
        ment += len(named)
        hall += len(bad)
        caps_hall += bool(bad)
        sal += len(salient.get(img, ()))
        sal_named += len(salient.get(img, set()) & named)
    n = len(caps)
    print(f"{lang}: n={n} CHAIRi={hall / max(ment, 1):.3f} CHAIRs={caps_hall / n:.3f} "
          f"recall_salient={sal_named / max(sal, 1):.3f}")
    if len(sys.argv) == 7:
        other, olang = first_captions(sys.argv[5]), sys.argv[6]
        same = sum(lex.mentions(caps[k], lang) == lex.mentions(other[k], olang) for k in caps if k in other)
        print(f"{lang}/{olang} name the same classes: {same / n:.2f} ({same} of {n})")


if __name__ == "__main__":
    main()
