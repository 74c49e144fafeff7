"""coco-caption metrics (pycocoevalcap: BLEU-1..4, ROUGE-L, CIDEr-D) of beam search; length penalty chosen on dev."""
import json

import torch

from .data import LANGS, split
from .generate import TorchStepper, beam_search
from .model import Captioner
from .tokenizer import LANG_ID


def load_model(path):
    st = torch.load(path, weights_only=False)
    cfg = dict(st["cfg"])
    model = Captioner(cfg.pop("vocab"), **cfg)
    model.load_state_dict(st["model"])
    return model.eval()


def coco_scores(refs, cands):
    """refs {k: [str]}, cands {k: str} -> dict of coco metrics (PTB tokenised, like coco-caption)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    tok = PTBTokenizer()
    r = tok.tokenize({k: [{"caption": c} for c in v] for k, v in refs.items()})
    c = tok.tokenize({k: [{"caption": cands[k]}] for k in refs})
    b, _ = Bleu(4).compute_score(r, c, verbose=0)
    out = {f"BLEU-{i + 1}": round(x, 4) for i, x in enumerate(b)}
    out["ROUGE-L"] = round(Rouge().compute_score(r, c)[0], 4)
    out["CIDEr-D"] = round(Cider().compute_score(r, c)[0], 4)
    return out


def caption_split(model, data, tok, names, lang, length_penalty, num_beams=3, batch=50):
    out = {}
    for i in range(0, len(names), batch):
        chunk = names[i:i + batch]
        with torch.no_grad():
            mem = model.encode(data.feats(chunk, view=0, cut=model.cut))
        ids = beam_search(TorchStepper(model, mem), len(chunk), LANG_ID[lang], num_beams=num_beams,
                          length_penalty=length_penalty)
        for n, seq in zip(chunk, ids):
            out[n] = tok.decode(seq, skip_special_tokens=True)
    return out


def evaluate_run(run, ckpts, data, tok, cfg, log, reuse=None):
    """Pick checkpoint and length_penalty on dev (mean beam CIDEr-D of both languages), then report test once.
    reuse: dev results already measured for unchanged checkpoints ({"name lp=x": scores}), to save time."""
    dev, test = split("dev"), split("test")
    results = {"dev": {}, "test": {}}
    best = (-1.0, None, None)
    for ckpt in ckpts:
        model = load_model(ckpt)
        for lp in cfg["length_penalties"]:
            s = (reuse or {}).get(f"{ckpt.name} lp={lp}") or {
                lang: coco_scores({n: data.caps[lang][n] for n in dev}, caption_split(model, data, tok, dev, lang, lp))
                for lang in LANGS}
            results["dev"][f"{ckpt.name} lp={lp}"] = s
            mean = sum(x["CIDEr-D"] for x in s.values()) / len(s)
            log(stage="eval", split="dev", checkpoint=ckpt.name, length_penalty=lp, scores=s)
            if mean > best[0]:
                best = (mean, ckpt, lp)
    _, ckpt, lp = best
    results.update(checkpoint=ckpt.name, length_penalty=lp)
    model = load_model(ckpt)
    samples = {}
    for lang in LANGS:
        cands = caption_split(model, data, tok, test, lang, lp)
        results["test"][lang] = coco_scores({n: data.caps[lang][n] for n in test}, cands)
        samples[lang] = {n: cands[n] for n in test[:20]}
    results["test_samples"] = samples
    log(stage="eval", split="test", checkpoint=ckpt.name, length_penalty=lp, scores=results["test"])
    (run / "metrics.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
    return results
