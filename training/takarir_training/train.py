"""Cross-entropy training then SCST on cached features; checkpoints each epoch and resumes from them."""
import json
import math
import random
import time

import numpy as np
import torch
import torch.nn.functional as F

from .cider import CiderD
from .data import CACHE, IMAGE_SIZE, LANGS, captions, grid_cells, split, with_cut
from .generate import greedy, strip
from .model import Captioner
from .tokenizer import BOS, EOS, LANG_ID, PAD


def autocast(cfg):
    """bf16 autocast for training passes when cfg["bf16"] (about 1.4x faster steps on a CPU with avx512_bf16);
    evaluation and export stay fp32, like the shipped ONNX graphs."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(cfg.get("bf16")))


class Data:
    """Cached grids (plain and flipped views) and tokenised captions, indexed by image name."""

    def __init__(self, tok, key="lite2", max_len=40):
        names = json.loads((CACHE / "names.json").read_text())
        self.index = {n: i for i, n in enumerate(names)}
        self.key, self.by_key = key, {}
        self._load(key)  # the final grid, always needed
        self.caps = {lang: captions(lang) for lang in LANGS}
        self.ids = {}
        for lang in LANGS:
            for n, cs in self.caps[lang].items():
                if n in self.index:
                    enc = tok.encode_batch(cs)
                    self.ids[n, lang] = [[BOS, LANG_ID[lang]] + e.ids[:max_len - 3] + [EOS] for e in enc]

    def _load(self, key):
        if key not in self.by_key:
            views = [np.load(CACHE / f"{key}_{v}.npy", mmap_mode="r") for v in ("plain", "flip")
                     if (CACHE / f"{key}_{v}.npy").exists()]
            self.by_key[key] = [np.ascontiguousarray(v) for v in views]  # into RAM: ~1 GB each for the final grid
        return self.by_key[key]

    def feats(self, names, view=None, rng=None, cut=None):
        """fp32 [B,cells,C]; view None = random per image (augmentation), else fixed view index.
        cut: the cached input of that backbone block (a model that fine-tunes the blocks from there on)."""
        views = self._load(with_cut(self.key, cut))
        idx = [self.index[n] for n in names]
        vs = [view if view is not None else rng.randrange(len(views)) for _ in names]
        return torch.from_numpy(np.stack([views[v][i] for v, i in zip(vs, idx)]).astype(np.float32))


def pad(seqs):
    T = max(map(len, seqs))
    return torch.tensor([s + [PAD] * (T - len(s)) for s in seqs])


def evaluate_greedy(model, data, tok, names, batch=100):
    """Dev CIDEr-D (fast scorer) per language with greedy decoding."""
    model.eval()
    out = {}
    for lang in LANGS:
        cands = {}
        for i in range(0, len(names), batch):
            chunk = names[i:i + batch]
            with torch.no_grad():
                ids = greedy(model, model.encode(data.feats(chunk, view=0, cut=model.cut)), LANG_ID[lang])
            for n, row in zip(chunk, ids.tolist()):
                cands[n] = tok.decode(strip(row), skip_special_tokens=True)
        out[lang] = CiderD({n: data.caps[lang][n] for n in names}).corpus(cands)
    model.train()
    return out


class Logger:
    def __init__(self, run):
        self.path = run / "log.jsonl"
        self.t0 = time.time()

    def __call__(self, **kw):
        kw["wall_s"] = round(time.time() - self.t0, 1)
        line = json.dumps(kw)
        print(line, flush=True)
        with open(self.path, "a") as f:
            f.write(line + "\n")


def per_lang(v):
    """A per-language setting: a number for every language, or {"en": .., "id": ..} to weight one of them."""
    return dict(v) if isinstance(v, dict) else {lang: v for lang in LANGS}


def average_checkpoints(paths, out):
    """The mean of several checkpoints' weights (integer buffers from the last): one model from the end of a run's
    trajectory, usually a little smoother than any single point of it."""
    sts = [torch.load(p, weights_only=False) for p in paths]
    mean = {k: (sum(st["model"][k] for st in sts) / len(sts)) if v.is_floating_point() else v
            for k, v in sts[-1]["model"].items()}
    save(out, model=mean, cfg=sts[-1]["cfg"], epoch=sts[-1]["epoch"], averaged=[p.name for p in paths])


def save(path, **state):
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def train_xe(run, data, tok, cfg, log, stage="xe", init=None):
    """Label-smoothed XE, AdamW + warmup-cosine; the captions of an image share one projected grid.
    stage "xe" trains from scratch with cfg lr/epochs/caps_per_lang; another stage (e.g. "ft") continues from
    init with cfg[f"{stage}_lr"] etc. (more epochs over all captions at a lower rate)."""
    p = {k: cfg[k if stage == "xe" else f"{stage}_{k}"] for k in ("lr", "epochs", "caps_per_lang")}
    seed = cfg["seed"] * 1000 + (0 if stage == "xe" else 200)
    torch.manual_seed(cfg["seed"])
    size = cfg.get("image_size", IMAGE_SIZE)
    cut = cfg.get(f"{stage}_cnn_cut")  # fine-tune the backbone from this block on (cached block inputs)
    top = {"cnn_top": {"backbone": cfg["backbone"], "cut": cut, "size": size}} if cut is not None else {}
    model = Captioner(tok.get_vocab_size(), grid=grid_cells(size), **cfg["model"], **top)
    if init is not None:
        missing, unexpected = model.load_state_dict(torch.load(init, weights_only=False)["model"], strict=False)
        # only a newly added top may be missing: it starts from the pretrained backbone's weights
        assert not unexpected and all(k.startswith("cnn_top.") for k in missing), (missing, unexpected)
    cnn = [q for n, q in model.named_parameters() if n.startswith("cnn_top.")]
    rest = [q for n, q in model.named_parameters() if not n.startswith("cnn_top.")]
    groups = [{"params": rest, "lr": p["lr"]}] + ([{"params": cnn, "lr": cfg["cnn_lr"]}] if cnn else [])
    opt = torch.optim.AdamW(groups, lr=p["lr"], weight_decay=0.01, betas=(0.9, 0.98))
    train = split("train")
    steps_per_epoch = math.ceil(len(train) / cfg["batch_images"])
    total = p["epochs"] * steps_per_epoch
    warm = max(1, int(0.05 * total))

    def lr_at(s):  # linear warmup, cosine decay to 0
        return (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * min(1.0, (s - warm) / max(1, total - warm))))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    start, best = 0, {"score": -1.0}
    last = run / f"{stage}_last.pt"
    if last.exists():
        st = torch.load(last, weights_only=False)
        model.load_state_dict(st["model"]), opt.load_state_dict(st["opt"]), sched.load_state_dict(st["sched"])
        start, best = st["epoch"] + 1, st["best"]
        log(event="resume", stage=stage, epoch=start)
    dev = split("dev")
    model.train()
    for epoch in range(start, p["epochs"]):
        rng = random.Random(seed + epoch)
        torch.manual_seed(seed + epoch)
        order = train[:]
        rng.shuffle(order)
        t0, tot, cnt = time.time(), 0.0, 0
        ks = per_lang(p["caps_per_lang"])
        for b in range(0, len(order), cfg["batch_images"]):
            names = order[b:b + cfg["batch_images"]]
            items = []  # (sequence, image row); k captions per language, rotating through the 5 each epoch
            for j, n in enumerate(names):
                for lang in LANGS:
                    caps, k = data.ids[n, lang], ks[lang]
                    items += [(caps[(epoch * k + c) % len(caps)], j) for c in range(k)]
            items.sort(key=lambda it: len(it[0]))
            with autocast(cfg):
                mem = model.encode(data.feats(names, rng=rng, cut=model.cut))
            loss, ntok = 0.0, 0
            for half in (items[:len(items) // 2], items[len(items) // 2:]):  # two length buckets: less padding
                x = pad([s for s, _ in half])
                inp, tgt = x[:, :-1], x[:, 1:].clone()
                tgt[:, 0] = PAD  # the language token is forced at inference, never predicted
                with autocast(cfg):
                    logits, _ = model.decode(inp, mem, torch.tensor([r for _, r in half]))
                logits = logits.float()
                n_tok = int((tgt != PAD).sum())
                loss = loss + F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1),
                                              ignore_index=PAD, label_smoothing=cfg["label_smoothing"],
                                              reduction="sum")
                ntok += n_tok
            loss = loss / ntok
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            tot, cnt = tot + loss.item(), cnt + 1
            if cnt % 50 == 0:
                log(stage=stage, epoch=epoch, step=cnt, loss=round(tot / cnt, 4), lr=sched.get_last_lr()[0],
                    epoch_s=round(time.time() - t0, 1))
        scores = evaluate_greedy(model, data, tok, dev[:cfg["dev_images"]])
        mean = sum(scores.values()) / len(scores)
        if mean > best["score"]:
            best = {"score": mean, "epoch": epoch, **scores}
            save(run / f"{stage}_best.pt", model=model.state_dict(), cfg=model.cfg, epoch=epoch)
        log(stage=stage, epoch=epoch, loss=round(tot / cnt, 4), dev_cider_greedy=scores, best=best,
            epoch_s=round(time.time() - t0, 1))
        save(last, model=model.state_dict(), opt=opt.state_dict(), sched=sched.state_dict(), epoch=epoch, best=best)
        if epoch - best["epoch"] >= cfg["patience"]:
            log(event="early_stop", stage=stage, epoch=epoch)
            break
    return best


def scst_lr(cfg, epoch):
    """The SCST learning rate of an epoch: `scst_lrs[epoch]` when the list is that long, else `scst_lr`."""
    lrs = cfg.get("scst_lrs") or []
    return lrs[epoch] if epoch < len(lrs) else cfg["scst_lr"]


def train_scst(run, data, tok, cfg, log, init=None):
    """Self-critical training on CIDEr-D: n samples per image and language, baseline = mean of the others.
    Starts from init (the best XE checkpoint)."""
    st = torch.load(init or run / "xe_best.pt", weights_only=False)
    model = Captioner(**{"vocab": st["cfg"]["vocab"]}, **{k: v for k, v in st["cfg"].items() if k != "vocab"})
    model.load_state_dict(st["model"])
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["scst_lr"], weight_decay=0.0)
    start, best = 0, None
    last = run / "scst_last.pt"
    if last.exists():
        s = torch.load(last, weights_only=False)
        model.load_state_dict(s["model"]), opt.load_state_dict(s["opt"])
        start, best = s["epoch"] + 1, s["best"]
        log(event="resume", stage="scst", epoch=start)
    train, dev = split("train"), split("dev")
    if best is None:
        scores = evaluate_greedy(model, data, tok, dev[:cfg["dev_images"]])
        best = {"score": sum(scores.values()) / 2, "epoch": -1, **scores}
        save(run / "scst_best.pt", model=model.state_dict(), cfg=model.cfg, epoch=-1)
        log(stage="scst", epoch=-1, dev_cider_greedy=scores)
    langs = cfg.get("scst_langs") or LANGS  # e.g. ["en"]: spend the samples on one language
    scorers = {lang: CiderD({n: data.caps[lang][n] for n in train}) for lang in langs}
    ns = per_lang(cfg["scst_samples"])
    if min(ns[lang] for lang in langs) < 2:  # the baseline is the mean of the other samples
        raise ValueError(f"scst_samples needs at least 2 per language, got {ns}")
    for epoch in range(start, cfg["scst_epochs"]):
        for g in opt.param_groups:  # the config says each epoch's rate, also when a run is resumed or extended
            g["lr"] = scst_lr(cfg, epoch)
        rng = random.Random(cfg["seed"] * 1000 + 100 + epoch)
        torch.manual_seed(cfg["seed"] * 1000 + 100 + epoch)
        order = train[:]
        rng.shuffle(order)
        order = order[:cfg["scst_images"]]
        t0, tot_r, cnt = time.time(), 0.0, 0
        for b in range(0, len(order), cfg["scst_batch_images"]):
            names = order[b:b + cfg["scst_batch_images"]]
            feats = data.feats(names, rng=rng, cut=model.cut)
            seqs, rows, adv = [], [], []
            model.eval()
            for lang in langs:
                n = ns[lang]
                with torch.no_grad(), autocast(cfg):
                    ids = greedy(model, model.encode(feats), LANG_ID[lang], max_new_tokens=cfg["scst_max_tokens"],
                                 sample=True, n=n, temperature=cfg.get("scst_temperature", 1.0),
                                 top_k=cfg.get("scst_top_k", 0))
                caps = [strip(r) for r in ids.tolist()]
                r = torch.tensor([scorers[lang].score(names[i // n], tok.decode(c, skip_special_tokens=True))
                                  for i, c in enumerate(caps)]).view(len(names), n)
                a = (r - (r.sum(1, keepdim=True) - r) / (n - 1)).view(-1)
                seqs += [[BOS, LANG_ID[lang]] + c + [EOS] for c in caps]
                rows += [i // n for i in range(len(caps))]
                adv += a.tolist()
                tot_r += r.mean().item() / len(langs)
            model.train()
            x = pad(seqs)
            inp, tgt = x[:, :-1], x[:, 1:].clone()
            tgt[:, 0] = PAD
            with autocast(cfg):
                logits, _ = model.decode(inp, model.encode(feats), torch.tensor(rows))
            logits = logits.float()
            lp = -F.cross_entropy(logits.transpose(1, 2), tgt, ignore_index=PAD, reduction="none")
            lens = (tgt != PAD).sum(1).clamp_min(1)
            loss = -(torch.tensor(adv) * lp.sum(1) / lens).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            cnt += 1
            if cnt % 10 == 0:
                log(stage="scst", epoch=epoch, step=cnt, reward=round(tot_r / cnt, 4), epoch_s=round(time.time() - t0, 1))
        scores = evaluate_greedy(model, data, tok, dev[:cfg["dev_images"]])
        mean = sum(scores.values()) / 2
        if mean > best["score"]:
            best = {"score": mean, "epoch": epoch, **scores}
            save(run / "scst_best.pt", model=model.state_dict(), cfg=model.cfg, epoch=epoch)
        log(stage="scst", epoch=epoch, lr=scst_lr(cfg, epoch), reward=round(tot_r / max(1, cnt), 4), dev_cider_greedy=scores, best=best,
            epoch_s=round(time.time() - t0, 1))
        save(run / f"scst_e{epoch}.pt", model=model.state_dict(), cfg=model.cfg, epoch=epoch)  # candidates on dev
        save(last, model=model.state_dict(), opt=opt.state_dict(), epoch=epoch, best=best)
    return best
