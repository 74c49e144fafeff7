"""Precision and salient recall of the objects Takarir reports, per photo and class, against coco-dev's labels.

    takarir caption ../shared/data/coco-dev/images --features objects --jsonl > OUT.jsonl
    python3 scripts/dev/detector_precision.py ../shared/data/coco-dev OUT.jsonl

A reported class is right when the photo is labelled with it at any size (objects.tsv); salient recall is the
share of the labelled classes covering >= 5% of a photo that are reported.
"""
import json
import sys
from pathlib import Path


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    data, out = Path(sys.argv[1]), sys.argv[2]
    labels = {}
    for line in list(open(data / "objects.tsv"))[1:]:
        img, cls, area = line.rstrip("\n").split("\t")
        labels.setdefault(img, {})[cls] = float(area)
    right = wrong = salient = found = 0
    for line in open(out):
        r = json.loads(line)
        img = Path(r["file"]).name
        reported = {o["class"] for o in r.get("objects") or []}
        truth = labels.get(img, {})
        right += len(reported & truth.keys())
        wrong += len(reported - truth.keys())
        sal = {c for c, a in truth.items() if a >= 0.05}
        salient += len(sal)
        found += len(sal & reported)
    print(f"precision {right / max(right + wrong, 1):.3f} ({right}/{right + wrong}) "
          f"salient recall {found / max(salient, 1):.3f} ({found}/{salient})")


if __name__ == "__main__":
    main()
