"""Plain Python reference for `takarir bench`: the same captioning work with onnxruntime + numpy + PIL.

Reads the same model directory (Optimum layout), pre-processes as preprocessor_config.json says,
runs the encoder and the KV-cached decoder (greedy, or a simple beam search with the same number of
beams), and prints timing figures as JSON on stdout. Run by `takarir bench`; not part of the product.

    .venv/bin/python scripts/bench_reference.py --model DIR [--beams N] [--threads N] [--runs N] IMAGE...
"""
import argparse
import json
import os
import resource
import time

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps


def load_json(d, name):
    p = os.path.join(d, name)
    return json.load(open(p)) if os.path.exists(p) else {}


class Model:
    def __init__(self, d, threads):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.enc = ort.InferenceSession(os.path.join(d, "encoder_model.onnx"), so)
        merged = os.path.join(d, "decoder_model_merged.onnx")
        if os.path.exists(merged):
            self.first = self.next = ort.InferenceSession(merged, so)
        else:
            self.first = ort.InferenceSession(os.path.join(d, "decoder_model.onnx"), so)
            self.next = ort.InferenceSession(os.path.join(d, "decoder_with_past_model.onnx"), so)
        self.past = [i for i in self.next.get_inputs() if i.name.startswith("past_key_values.")]
        cfg, gen = load_json(d, "config.json"), load_json(d, "generation_config.json")
        self.start = cfg.get("decoder_start_token_id", gen.get("decoder_start_token_id"))
        eos = gen.get("eos_token_id", cfg.get("eos_token_id"))
        self.eos = set(eos if isinstance(eos, list) else [eos])
        self.max_new = gen.get("max_new_tokens") or (gen.get("max_length", 20) - 1)
        self.languages = cfg.get("languages", {})
        tok = json.load(open(os.path.join(d, "tokenizer.json")))
        self.vocab = dict(tok["model"]["vocab"])
        for t in tok.get("added_tokens", []):
            self.vocab[t["content"]] = t["id"]
        pp = load_json(d, "preprocessor_config.json")
        size = pp.get("size", {"height": 224, "width": 224})
        self.size = (size["width"], size["height"]) if isinstance(size, dict) else (size, size)
        self.resample = pp.get("resample", 2)
        self.scale = pp.get("rescale_factor", 1 / 255) if pp.get("do_rescale", True) else 1.0
        self.mean = np.array(pp.get("image_mean", [0.5] * 3), np.float32).reshape(3, 1, 1)
        self.std = np.array(pp.get("image_std", [0.5] * 3), np.float32).reshape(3, 1, 1)

    def preprocess(self, path):
        img = ImageOps.exif_transpose(Image.open(path)).convert("RGB").resize(self.size, resample=self.resample)
        x = np.asarray(img, np.float32).transpose(2, 0, 1) * np.float32(self.scale)
        return (x - self.mean) / self.std

    def step(self, ids, states, cache):
        feeds = {"input_ids": ids, "encoder_hidden_states": states}
        sess = self.first if cache is None else self.next
        names = {i.name for i in sess.get_inputs()}
        if "use_cache_branch" in names:
            feeds["use_cache_branch"] = np.array([cache is not None])
        for p in self.past:
            if p.name in names:
                if cache is None:
                    feeds[p.name] = np.zeros((ids.shape[0], p.shape[1], 0, p.shape[3]), np.float32)
                else:
                    feeds[p.name] = cache[p.name]
        outs = sess.run(None, feeds)
        out_names = [o.name for o in sess.get_outputs()]
        new_cache = dict(cache or {})
        for n, v in zip(out_names, outs):
            if n.startswith("present"):
                new_cache["past_key_values" + n[len("present"):]] = v
        return outs[out_names.index("logits")][:, -1, :], new_cache

    def generate(self, states, beams, lang):
        forced = self.vocab.get(self.languages[lang]) if lang in self.languages else None
        n = states.shape[0]
        steps = 0
        if beams == 1:
            seqs = [[self.start] for _ in range(n)]
            done = [False] * n
            cache = None
            ids = np.full((n, 1), self.start, np.int64)
            for t in range(self.max_new):
                logits, cache = self.step(ids, states, cache)
                steps += 1
                if t == 0 and forced is not None:
                    nxt = np.full(n, forced)
                else:
                    nxt = logits.argmax(-1)
                for i in range(n):
                    if not done[i]:
                        seqs[i].append(int(nxt[i]))
                        done[i] = int(nxt[i]) in self.eos
                if all(done):
                    break
                ids = nxt.reshape(n, 1).astype(np.int64)
            return seqs, steps
        # Beam search: beams rows per image, 2*beams candidates, finished hypotheses kept per image.
        states = np.repeat(states, beams, axis=0)
        rows = n * beams
        scores = np.tile(np.array([0.0] + [-1e9] * (beams - 1), np.float32), n)
        seqs = [[self.start] for _ in range(rows)]
        finished = [[] for _ in range(n)]
        cache = None
        ids = np.full((rows, 1), self.start, np.int64)
        for t in range(self.max_new):
            logits, cache = self.step(ids, states, cache)
            steps += 1
            logp = logits - logits.max(-1, keepdims=True)
            logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
            if t == 0 and forced is not None:
                logp[:] = -np.inf
                logp[:, forced] = 0.0
            total = (logp + scores[:, None]).reshape(n, -1)
            vocab = logits.shape[-1]
            new_rows, new_scores, new_seqs, new_tok = [], [], [], []
            for b in range(n):
                cand = np.argsort(-total[b])[: 2 * beams]
                kept = 0
                for c in cand:
                    r, tok = b * beams + c // vocab, int(c % vocab)
                    if tok in self.eos or t == self.max_new - 1:
                        finished[b].append((float(total[b, c]) / (t + 1), seqs[r] + [tok]))
                        continue
                    if kept < beams:
                        new_rows.append(r)
                        new_scores.append(total[b, c])
                        new_seqs.append(seqs[r] + [tok])
                        new_tok.append(tok)
                        kept += 1
                while kept < beams:
                    new_rows.append(b * beams)
                    new_scores.append(-1e9)
                    new_seqs.append(seqs[b * beams] + [self.start])
                    new_tok.append(self.start)
                    kept += 1
            if all(len(f) >= beams for f in finished):
                break
            cache = {k: v[new_rows] for k, v in cache.items()}
            scores = np.array(new_scores, np.float32)
            seqs = new_seqs
            ids = np.array(new_tok, np.int64).reshape(rows, 1)
        return [max(f)[1] if f else seqs[b * beams] for b, f in enumerate(finished)], steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--beams", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--lang")
    ap.add_argument("images", nargs="+")
    a = ap.parse_args()
    m = Model(a.model, a.threads)
    lang = a.lang or ("id" if "id" in m.languages else next(iter(m.languages), None))

    def caption(paths):
        x = np.stack([m.preprocess(p) for p in paths])
        states = m.enc.run(None, {m.enc.get_inputs()[0].name: x})[0]
        return m.generate(states, a.beams, lang)

    for p in a.images:
        caption([p])
    prep, enc, per_token, e2e = [], [], [], []
    for i in range(a.runs):
        p = a.images[i % len(a.images)]
        t = time.perf_counter()
        x = m.preprocess(p)[None]
        prep.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        states = m.enc.run(None, {m.enc.get_inputs()[0].name: x})[0]
        enc.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        _, steps = m.generate(states, a.beams, lang)
        per_token.append((time.perf_counter() - t) * 1000 / max(steps, 1))
        t = time.perf_counter()
        caption([p])
        e2e.append((time.perf_counter() - t) * 1000)
    rounds = max(a.runs // 4, 2)
    batch = [a.images[i % len(a.images)] for i in range(8)]
    t = time.perf_counter()
    for _ in range(rounds):
        caption(batch)
    ips = rounds * 8 / (time.perf_counter() - t)
    e2e.sort()
    pct = lambda q: e2e[min(len(e2e) - 1, round((len(e2e) - 1) * q))]
    print(json.dumps({
        "decode_preprocess_ms": float(np.mean(prep)),
        "encoder_ms": float(np.mean(enc)),
        "decoder_ms_per_token": float(np.mean(per_token)),
        "e2e_p50_ms": pct(0.5),
        "e2e_p95_ms": pct(0.95),
        "images_per_s_batch8": ips,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
