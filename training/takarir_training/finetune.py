"""Fine-tune a trained captioner on Flickr8k plus a consented training export, gated by evaluation.

The export is what `takarir training export --to DIR` writes (Flickr8k's layout: images/ID.png,
captions.LANG.tsv, splits/train.txt and splits/dev.txt, manifest.json). Items listed by
`takarir training withdrawn --since DIR/manifest.json` (--withdrawn FILE) are left out, as are
items the manifest no longer lists. Each source has a sampling weight (--weight consented=4): an
image of a source is drawn that many times as often as a Flickr8k image.

Gates (greedy CIDEr-D, before = the base model, after = the fine-tuned one):
  flickr8k_dev         Flickr8k dev (both languages, mean);
  coco_dev             ../shared/data/coco-dev (English), when present;
  consented_held_back  the export's held-back split (its dev.txt; never trained on).
The candidate is promoted only if no gate drops by more than --tolerance (0.01) and the consented gate improves.
Writes RUN/gates.json and RUN/card.json (the fields of the service's card.json: version, base, training_exports,
consented_items_per_language, gates, plus promoted); with --out and a promotion, the ONNX model directory with its
card.json (real mode only), ready for `takarir models promote`.

A simulated consented set (Flickr8k dev photos posing as users' items, kept out of the Flickr8k gate):
    python -m takarir_training.simulate_export --to /tmp/sim --photos 300
    python -m takarir_training.finetune ... --export /tmp/sim --flickr-exclude /tmp/sim/flickr_names.txt
Real run (needs the shipped model's checkpoint, e.g. runs/ew4/scst_avg.pt from `training/run.sh --name ew4`):
    python -m takarir_training.finetune --base runs/ew4/scst_avg.pt --tokenizer ../models/default/tokenizer.json \
        --export /srv/train/2026-12 --withdrawn gone.txt --name ft-2026-12 --out ../models/2026-12
Smoke (a tiny model from scratch on colour-statistics features, for tests; minutes at most):
    python -m takarir_training.finetune --smoke --flickr DIR --export DIR --name smoke
"""
import argparse
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .cider import CiderD
from .data import DATA, IMAGE_SIZE, RUNS, ROOT, normalise
from .generate import greedy, strip
from .model import Captioner
from .tokenizer import BOS, EOS, LANG_ID, PAD
from .train import Logger, autocast, pad, save

COCO_DEV = ROOT.parent / "shared" / "data" / "coco-dev"
SMOKE_GRID = 4  # smoke features: a 4x4 grid of per-cell colour mean and spread


class Source:
    """A Flickr8k-layout directory: {name: {lang: [captions]}}, train and dev names."""

    def __init__(self, key, root, train=(), dev=(), langs=("en", "id")):
        self.key, self.root = key, Path(root)
        self.caps = {}
        for lang in langs:
            path = self.root / f"captions.{lang}.tsv"
            if not path.exists():
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                k, _, cap = line.partition("\t")
                if cap.strip():
                    self.caps.setdefault(k.split("#")[0], {}).setdefault(lang, []).append(cap.strip())
        self.train = [n for n in train if n in self.caps]
        self.dev = [n for n in dev if n in self.caps]

    def image(self, name):
        return Image.open(self.root / "images" / name).convert("RGB")


def read_split(root, name):
    path = Path(root) / "splits" / f"{name}.txt"
    return path.read_text().split() if path.exists() else []


def consented_source(export, withdrawn):
    """The export's items still consented: listed in its manifest and not in the withdrawn list."""
    manifest = json.loads((Path(export) / "manifest.json").read_text())
    if manifest.get("format") != "takarir-training-export/1":
        raise SystemExit(f"{export}: not a takarir training export")
    gone = set(withdrawn)
    keep = {e["id"] for e in manifest["entries"] if e["id"] not in gone}
    names = lambda split: [n for n in read_split(export, split) if n.removesuffix(".png") in keep]  # noqa: E731
    src = Source("consented", export, names("train"), names("dev"))
    excluded = sum(1 for e in manifest["entries"] if e["id"] in gone)
    return src, manifest, excluded


def smoke_features(img):
    """[cells, 6]: per cell of a SMOKE_GRID x SMOKE_GRID grid, the RGB mean and spread (0..1)."""
    x = np.asarray(img.resize((32, 32)), dtype=np.float32) / 255.0
    s = 32 // SMOKE_GRID
    cells = x.reshape(SMOKE_GRID, s, SMOKE_GRID, s, 3).transpose(0, 2, 1, 3, 4).reshape(SMOKE_GRID ** 2, -1, 3)
    return np.concatenate([cells.mean(1), cells.std(1)], 1)


class Features:
    """Features per (source, image), computed once per run and cached in RUN/feats_<source>.npz."""

    def __init__(self, run, smoke, cut=None, backbone_name="lite2", size=IMAGE_SIZE):
        self.run, self.smoke, self.cut, self.size = run, smoke, cut, size
        self.backbone_name, self.cnn, self.by_source = backbone_name, None, {}

    def _one(self, img):
        if self.smoke:
            return smoke_features(img)
        if self.cnn is None:
            from .features import backbone
            self.cnn = backbone(self.backbone_name, self.size)
        from .features import bottom
        x = torch.from_numpy(normalise(img.resize((self.size, self.size), Image.BILINEAR)))[None]
        with torch.no_grad():
            f = self.cnn.extract_features(x) if self.cut is None else bottom(self.cnn, x, self.cut)
        return f.flatten(2).transpose(1, 2)[0].numpy().astype(np.float16)

    def load(self, src):
        path = self.run / f"feats_{src.key}.npz"
        have = dict(np.load(path)) if path.exists() else {}
        todo = [n for n in src.train + src.dev if n not in have]
        for n in todo:
            have[n] = self._one(src.image(n))
        if todo:
            np.savez(path, **have)
        self.by_source[src.key] = have

    def get(self, key, names):
        return torch.from_numpy(np.stack([self.by_source[key][n] for n in names]).astype(np.float32))


def encode_captions(tok, src, max_len=40):
    return {(n, lang): [[BOS, LANG_ID[lang]] + e.ids[:max_len - 3] + [EOS] for e in tok.encode_batch(cs)]
            for n, by_lang in src.caps.items() for lang, cs in by_lang.items() if lang in LANG_ID}


def gate_scores(model, tok, feats, src, langs=None):
    """Greedy CIDEr-D on src.dev, the mean over the languages it has references in."""
    model.eval()
    out = {}
    for lang in langs or LANG_ID:
        names = [n for n in src.dev if lang in src.caps[n]]
        if not names:
            continue
        cands = {}
        for i in range(0, len(names), 100):
            chunk = names[i:i + 100]
            with torch.no_grad():
                ids = greedy(model, model.encode(feats.get(src.key, chunk)), LANG_ID[lang])
            for n, row in zip(chunk, ids.tolist()):
                cands[n] = tok.decode(strip(row), skip_special_tokens=True)
        out[lang] = CiderD({n: src.caps[n][lang] for n in names}).corpus(cands)
    return {"CIDEr-D": round(sum(out.values()) / max(1, len(out)), 4), **{k: round(v, 4) for k, v in out.items()}}


def train(model, tok, feats, sources, weights, cfg, log):
    """Label-smoothed XE continued on the weighted mixture of the sources' train images."""
    pool = [(s.key, n) for s in sources for n in s.train]
    w = [weights.get(k, 1.0) for k, _ in pool]
    ids = {}
    for s in sources:
        ids.update({(s.key, n, lang): v for (n, lang), v in encode_captions(tok, s).items()})
    rng = random.Random(cfg["seed"])
    torch.manual_seed(cfg["seed"])
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=0.01, betas=(0.9, 0.98))
    steps = cfg["steps"]
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))
    model.train()
    t0, tot = time.time(), 0.0
    for step in range(steps):
        batch = rng.choices(pool, weights=w, k=cfg["batch_images"])
        items = []
        for j, (key, n) in enumerate(batch):
            for lang in LANG_ID:
                caps = ids.get((key, n, lang))
                if caps:
                    items.append((caps[rng.randrange(len(caps))], j))
        with autocast(cfg):
            mem = model.encode(torch.cat([feats.get(k, [n]) for k, n in batch]))
            x = pad([s for s, _ in items])
            inp, tgt = x[:, :-1], x[:, 1:].clone()
            tgt[:, 0] = PAD  # the language token is forced, never predicted
            logits, _ = model.decode(inp, mem, torch.tensor([r for _, r in items]))
        logits = logits.float()
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=PAD,
                               label_smoothing=cfg["label_smoothing"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        tot += loss.item()
        if (step + 1) % max(1, steps // 10) == 0:
            log(stage="finetune", step=step + 1, loss=round(tot / (step + 1), 4), s=round(time.time() - t0, 1))
    model.eval()
    return model


def smoke_tokenizer(path, sources, vocab_size=200):
    """A small BPE on the sources' captions, with the shipped tokenizer's special tokens and normalisation."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from .tokenizer import SPECIALS
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase(),
                                           normalizers.Replace(Regex(r"[^\w\s'-]"), " "),
                                           normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    texts = [c for s in sources for by_lang in s.caps.values() for cs in by_lang.values() for c in cs]
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=1,
                                                       special_tokens=SPECIALS, show_progress=False))
    tok.save(str(path))
    return tok


def decide(gates, tolerance):
    """Promote only if no gate drops by more than `tolerance` and the consented gate improves."""
    drops = {k: round(g["before"] - g["after"], 4) for k, g in gates.items()}
    c = gates.get("consented_held_back")
    reasons = [f"{k} drops {d:.4f} > {tolerance}" for k, d in drops.items() if d > tolerance]
    if c is None:
        reasons.append("no held-back consented items to measure")
    elif c["after"] <= c["before"]:
        reasons.append("the consented set does not improve")
    return not reasons, reasons


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--export", required=True, help="directory written by `takarir training export`")
    p.add_argument("--withdrawn", help="file of ids (`takarir training withdrawn --since ...`) to leave out")
    p.add_argument("--flickr", default=str(DATA), help="Flickr8k directory (default: ../shared/data/flickr8k)")
    p.add_argument("--coco-dev", default=str(COCO_DEV), help="coco-dev directory; skipped when absent")
    p.add_argument("--base", help="checkpoint of the model in use (real mode)")
    p.add_argument("--base-version", default=None, help="version of the base model (its card's)")
    p.add_argument("--base-card", help="the base model's card.json: its training exports carry over")
    p.add_argument("--tokenizer", help="the base model's tokenizer.json (real mode)")
    p.add_argument("--weight", action="append", default=[], help="source=weight, e.g. consented=4 (default 1)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--tolerance", type=float, default=0.01)
    p.add_argument("--flickr-exclude", help="file of Flickr8k names kept out of training and the Flickr8k gate "
                   "(the photos of a simulated export: simulate_export's flickr_names.txt)")
    p.add_argument("--flickr-train", type=int, default=None, help="Flickr8k train images used (default all)")
    p.add_argument("--dev-images", type=int, default=500, help="Flickr8k / coco dev images per gate")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--name", default=time.strftime("ft-%Y%m%d-%H%M%S"))
    p.add_argument("--runs", default=str(RUNS))
    p.add_argument("--out", help="model directory to export to when promoted (real mode)")
    p.add_argument("--smoke", action="store_true", help="tiny model from scratch on colour features (tests)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    run = Path(a.runs) / a.name
    run.mkdir(parents=True, exist_ok=True)
    log = Logger(run)
    t0 = time.time()
    weights = {k: float(v) for k, v in (kv.split("=", 1) for kv in a.weight)}
    withdrawn = Path(a.withdrawn).read_text().split() if a.withdrawn else []
    consented, manifest, excluded = consented_source(a.export, withdrawn)
    fk_out = set(Path(a.flickr_exclude).read_text().split()) if a.flickr_exclude else set()
    fk_train = [n for n in read_split(a.flickr, "train") if n not in fk_out]
    fk_dev = [n for n in read_split(a.flickr, "dev") if n not in fk_out]
    flickr = Source("flickr8k", a.flickr, fk_train[:a.flickr_train], fk_dev[:a.dev_images])
    sources = [flickr, consented]
    gates_src = {"flickr8k_dev": flickr, "consented_held_back": consented}
    if Path(a.coco_dev, "captions.en.tsv").exists():
        coco_names = sorted({line.split("#")[0] for line in
                             Path(a.coco_dev, "captions.en.tsv").read_text().splitlines() if line})
        gates_src["coco_dev"] = Source("coco_dev", a.coco_dev, dev=coco_names[:a.dev_images], langs=("en",))
    log(event="start", export=manifest["exported_at"], consented_train=len(consented.train),
        consented_held_back=len(consented.dev), withdrawn_excluded=excluded, flickr_train=len(flickr.train),
        gates=sorted(gates_src), weights=weights, smoke=a.smoke)

    cfg = {"seed": 1234, "batch_images": 16, "label_smoothing": 0.1, "bf16": not a.smoke,
           "steps": a.steps or (300 if a.smoke else 600), "lr": a.lr or (2e-3 if a.smoke else 3e-5)}
    if a.smoke:
        # One tokenizer for both sources, as the shipped one covers the words of both languages.
        tok = smoke_tokenizer(run / "tokenizer.json", [flickr, consented])
        feats = Features(run, smoke=True)
        torch.manual_seed(cfg["seed"])  # the base model's initial weights
        for s in {id(s): s for s in list(sources) + list(gates_src.values())}.values():
            feats.load(s)
        base = Captioner(tok.get_vocab_size(), feat_dim=6, d=64, heads=4, layers=1, ff=128, dropout=0.1,
                         max_len=40, grid=SMOKE_GRID ** 2)
        # The stand-in for the model in use: trained on Flickr8k alone.
        base = train(base, tok, feats, [flickr], {}, {**cfg, "lr": 3e-3, "steps": cfg["steps"]}, log)
        save(run / "base.pt", model=base.state_dict(), cfg=base.cfg, epoch=0)
        base_path = run / "base.pt"
    else:
        if not (a.base and a.tokenizer):
            raise SystemExit("--base and --tokenizer are required (or --smoke)")
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(a.tokenizer)
        (run / "tokenizer.json").write_text(Path(a.tokenizer).read_text())
        base_path = Path(a.base)
    from .evaluate import load_model
    base = load_model(base_path)
    if not a.smoke:
        feats = Features(run, smoke=False, cut=base.cut)
        for s in {id(s): s for s in list(sources) + list(gates_src.values())}.values():
            feats.load(s)
    before = {k: gate_scores(base, tok, feats, s) for k, s in gates_src.items()}
    log(event="gates_before", scores=before)
    model = train(load_model(base_path), tok, feats, sources, weights, cfg, log)
    save(run / "candidate.pt", model=model.state_dict(), cfg=model.cfg, epoch=0)
    after = {k: gate_scores(model, tok, feats, s) for k, s in gates_src.items()}
    gates = {k: {"before": before[k]["CIDEr-D"], "after": after[k]["CIDEr-D"]} for k in gates_src}
    promoted, reasons = decide(gates, a.tolerance)
    per_lang = {}
    for n in consented.train:
        for lang in consented.caps[n]:
            per_lang[lang] = per_lang.get(lang, 0) + 1
    base_card = json.loads(Path(a.base_card).read_text()) if a.base_card else {}
    version = f"{a.base_version or base_card.get('version') or 'base'}+{a.name}"
    card = {
        "version": version,
        "base": a.base_version or base_card.get("version"),
        "training_exports": base_card.get("training_exports", []) + [manifest["exported_at"]],
        "consented_items_per_language": {
            k: base_card.get("consented_items_per_language", {}).get(k, 0) + per_lang.get(k, 0)
            for k in sorted(set(per_lang) | set(base_card.get("consented_items_per_language", {})))},
        "gates": gates,
        "promoted": promoted,
        "withdrawn_excluded": excluded,
    }
    (run / "gates.json").write_text(json.dumps({"before": before, "after": after, "gates": gates,
                                                "promoted": promoted, "reasons": reasons}, indent=1))
    (run / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    log(event="decision", promoted=promoted, reasons=reasons, gates=gates, total_s=round(time.time() - t0, 1))
    if promoted and a.out and not a.smoke:
        import os
        from .export import export
        os.environ.setdefault("TAKARIR_MODEL_VERSION", version)
        out = Path(a.out)
        export(run, run / "candidate.pt", {"backbone": "lite2", "image_size": IMAGE_SIZE},
               lambda **kw: log(**kw), out=out)
        (out / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    return card


if __name__ == "__main__":
    main()
