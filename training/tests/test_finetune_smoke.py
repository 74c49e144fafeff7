"""The fine-tune entry point in smoke mode on synthetic data in the layouts it reads (Flickr8k's, and what
`takarir training export` writes): withdrawn items are left out, every gate is measured before and after, the
decision follows the rule, and card.json says what trained the candidate. Runs in well under a minute:
    training/.venv/bin/python -m unittest discover -s training/tests
"""
import json
import random
import sys
import tempfile
import unittest
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from takarir_training import finetune, simulate_export  # noqa: E402

COLOURS = {"red": ((220, 30, 30), "merah"), "green": ((30, 200, 30), "hijau"), "blue": ((30, 30, 220), "biru"),
           "yellow": ((230, 230, 40), "kuning"), "white": ((245, 245, 245), "putih"), "black": ((10, 10, 10), "hitam")}
# Only in the consented set: colours the base model never saw.
NEW = {"purple": ((140, 30, 160), "ungu"), "orange": ((250, 140, 20), "oranye"), "pink": ((250, 150, 200), "merah muda"),
       "brown": ((120, 70, 20), "cokelat")}


def picture(rgb, rng):
    img = Image.new("RGB", (32, 32), rgb)
    px = img.load()
    for _ in range(40):
        x, y = rng.randrange(32), rng.randrange(32)
        px[x, y] = tuple(max(0, min(255, c + rng.randint(-25, 25))) for c in rgb)
    return img


def flickr_like(root, rng):
    (root / "images").mkdir(parents=True)
    (root / "splits").mkdir()
    en, idn, names = [], [], []
    for i in range(150):
        colour = list(COLOURS)[i % len(COLOURS)]
        rgb, word = COLOURS[colour]
        name = f"f{i}.jpg"
        picture(rgb, rng).save(root / "images" / name)
        names.append(name)
        en += [f"{name}#0\ta {colour} picture", f"{name}#1\ta picture that is {colour}"]
        idn += [f"{name}#0\tgambar {word}"]
    (root / "captions.en.tsv").write_text("\n".join(en) + "\n")
    (root / "captions.id.tsv").write_text("\n".join(idn) + "\n")
    (root / "splits" / "train.txt").write_text("\n".join(names[:120]) + "\n")
    (root / "splits" / "dev.txt").write_text("\n".join(names[120:]) + "\n")


def export_like(root, rng):
    """40 items of the new colours, alternately captioned in Indonesian and English; 8 held back; returns the ids
    withdrawn since."""
    (root / "images").mkdir(parents=True)
    (root / "splits").mkdir()
    caps = {"en": [], "id": []}
    entries, train, dev = [], [], []
    for i in range(40):
        pid = f"{i:02x}" + "ab" * 15
        colour = list(NEW)[(i // 2) % len(NEW)]
        rgb, word = NEW[colour]
        lang = "id" if i % 2 else "en"
        picture(rgb, rng).save(root / "images" / f"{pid}.png")
        caps[lang].append(f"{pid}.png#0\t" + (f"gambar {word}" if lang == "id" else f"a {colour} picture"))
        split = "dev" if i < 8 else "train"
        (dev if split == "dev" else train).append(f"{pid}.png")
        entries.append({"id": pid, "lang": lang, "consent_version": "2.2", "split": split})
    for lang, lines in caps.items():
        (root / f"captions.{lang}.tsv").write_text("\n".join(lines) + "\n")
    (root / "splits" / "train.txt").write_text("\n".join(train) + "\n")
    (root / "splits" / "dev.txt").write_text("\n".join(dev) + "\n")
    (root / "manifest.json").write_text(json.dumps({
        "format": "takarir-training-export/1", "exported_at": "2026-12-03T14:30:00Z", "items": 40,
        "per_language": {"en": 20, "id": 20}, "held_back_per_language": {"en": 4, "id": 4},
        "consent_versions": {"2.2": 40}, "entries": entries}))
    # Two train items withdrawn since the export (one per language).
    return [entries[10]["id"], entries[11]["id"]]


class SmokeFinetune(unittest.TestCase):
    def test_gates_decision_and_card(self):
        rng = random.Random(7)
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            flickr_like(tmp / "flickr", rng)
            gone = export_like(tmp / "export", rng)
            (tmp / "withdrawn.txt").write_text("\n".join(gone) + "\n")
            card = finetune.main([
                "--smoke", "--flickr", str(tmp / "flickr"), "--export", str(tmp / "export"),
                "--withdrawn", str(tmp / "withdrawn.txt"), "--coco-dev", str(tmp / "none"),
                # The toy task's CIDEr-D is about ten times real captions' (5 vs 0.55): a tolerance to match.
                "--weight", "consented=3", "--steps", "300", "--threads", "1", "--tolerance", "0.3",
                "--runs", str(tmp / "runs"), "--name", "smoke"])
            run = tmp / "runs" / "smoke"
            self.assertEqual(json.loads((run / "card.json").read_text()), card)
            gates = json.loads((run / "gates.json").read_text())
            # coco-dev absent: two gates, both measured before and after.
            self.assertEqual(sorted(card["gates"]), ["consented_held_back", "flickr8k_dev"])
            self.assertEqual(card["withdrawn_excluded"], 2)
            # 32 train items less the 2 withdrawn, per language.
            self.assertEqual(card["consented_items_per_language"], {"en": 15, "id": 15})
            self.assertEqual(card["training_exports"], ["2026-12-03T14:30:00Z"])
            c = card["gates"]["consented_held_back"]
            self.assertGreater(c["after"], c["before"] + 0.5, gates)  # new colours learnt
            ok, _ = finetune.decide(card["gates"], 0.3)
            self.assertEqual(card["promoted"], ok)
            self.assertEqual(gates["promoted"], ok)
            self.assertTrue(card["promoted"], gates)

    def test_simulated_export_is_kept_out_of_the_flickr_gate(self):
        rng = random.Random(3)
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            flickr_like(tmp / "flickr", rng)
            entries = simulate_export.simulate(tmp / "flickr", tmp / "sim", photos=20, id_share=0.5)
            self.assertEqual(len(entries), 20)
            manifest = json.loads((tmp / "sim" / "manifest.json").read_text())
            self.assertEqual(sum(manifest["per_language"].values()), 20)
            used = (tmp / "sim" / "flickr_names.txt").read_text().split()
            self.assertEqual(len(used), 20)
            card = finetune.main([
                "--smoke", "--flickr", str(tmp / "flickr"), "--export", str(tmp / "sim"),
                "--flickr-exclude", str(tmp / "sim" / "flickr_names.txt"), "--coco-dev", str(tmp / "none"),
                "--steps", "60", "--threads", "1", "--runs", str(tmp / "runs"), "--name", "sim"])
            log = [json.loads(line) for line in (tmp / "runs" / "sim" / "log.jsonl").read_text().splitlines()]
            start = next(e for e in log if e.get("event") == "start")
            self.assertEqual(start["flickr_train"], 120)  # the synthetic dev photos are all outside train
            self.assertEqual(start["consented_train"] + start["consented_held_back"], 20)
            self.assertEqual(sum(card["consented_items_per_language"].values()), start["consented_train"])
            feats = dict(__import__("numpy").load(tmp / "runs" / "sim" / "feats_flickr8k.npz"))
            self.assertFalse(set(used) & set(feats), "simulated photos are not in the Flickr8k gate")

    def test_decision_rule(self):
        g = {"flickr8k_dev": {"before": 0.56, "after": 0.552}, "coco_dev": {"before": 0.30, "after": 0.31},
             "consented_held_back": {"before": 0.49, "after": 0.55}}
        self.assertEqual(finetune.decide(g, 0.01), (True, []))
        g["flickr8k_dev"]["after"] = 0.548  # drops 0.012
        ok, reasons = finetune.decide(g, 0.01)
        self.assertFalse(ok)
        self.assertIn("flickr8k_dev", reasons[0])
        g["flickr8k_dev"]["after"] = 0.56
        g["consented_held_back"]["after"] = 0.49  # no improvement
        self.assertEqual(finetune.decide(g, 0.01), (False, ["the consented set does not improve"]))


if __name__ == "__main__":
    unittest.main()
