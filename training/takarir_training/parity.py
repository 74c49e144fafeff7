"""PyTorch vs ONNX Runtime beam-search tokens on 20 test images (not run by CI); writes runs/parity_beam3.json
for comparison with the Rust engine
({image: {lang: [BOS, LANG, tokens..., EOS]}}). Usage: python -m takarir_training.parity [--ckpt PATH] [--model-dir DIR]"""
import argparse
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from .data import LANGS, RUNS, load_pixels, split
from .evaluate import load_model
from .export import OUT, Encoder
from .features import backbone
from .generate import TorchStepper, beam_search
from .tokenizer import BOS, LANG_ID


class OrtStepper:
    """The engine's loop on the merged decoder: first call use_cache_branch=False with 1-long dummy past."""

    def __init__(self, sess, mem, heads, head_dim, layers):
        self.sess, self.mem, self.shape, self.layers = sess, mem, (heads, head_dim), layers
        self.names = [o.name for o in sess.get_outputs()]

    def __call__(self, ids, past, rows):
        feed = {"input_ids": ids, "encoder_hidden_states": self.mem[rows],
                "use_cache_branch": np.array([past is not None])}
        for i in range(self.layers):
            for t in ("key", "value"):
                k = f"past_key_values.{i}.{t}"
                feed[k] = past[f"present.{i}.{t}"] if past is not None else \
                    np.zeros((len(ids), *self.shape[:1], 1, self.shape[1]), np.float32)
        out = dict(zip(self.names, self.sess.run(None, feed)))
        return out["logits"][:, -1], {k: v for k, v in out.items() if k != "logits"}

    @staticmethod
    def reorder(past, idx):
        return {k: v[idx] for k, v in past.items()}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ckpt", type=Path, default=None, help="PyTorch checkpoint (default: the one named in model dir)")
    p.add_argument("--model-dir", type=Path, default=OUT)
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--out", type=Path, default=RUNS / "parity_beam3.json")
    a = p.parse_args()
    torch.set_num_threads(2)
    cfg = json.loads((a.model_dir / "config.json").read_text())
    gen = json.loads((a.model_dir / "generation_config.json").read_text())
    ckpt = a.ckpt or RUNS / cfg["takarir"]["run"] / cfg["takarir"]["checkpoint"]
    model = load_model(ckpt)
    size = cfg["encoder"]["image_size"]
    enc = Encoder(backbone(cfg["takarir"]["backbone"], size), model).eval()
    names = split("test")[:a.n]
    x = np.stack([load_pixels(n, size=size) for n in names])
    with torch.no_grad():
        mem_t = enc(torch.from_numpy(x))
    mem_o = ort.InferenceSession(str(a.model_dir / "encoder_model.onnx")).run(None, {"pixel_values": x})[0]
    dec = ort.InferenceSession(str(a.model_dir / "decoder_model_merged.onnx"))
    kw = dict(num_beams=gen["num_beams"], no_repeat=gen["no_repeat_ngram_size"],
              length_penalty=gen["length_penalty"], max_new_tokens=gen["max_new_tokens"])
    res, same = {n: {} for n in names}, True
    for lang in LANGS:
        t = beam_search(TorchStepper(model, mem_t), len(names), LANG_ID[lang], **kw)
        o = beam_search(OrtStepper(dec, mem_o, cfg["decoder_attention_heads"],
                                   cfg["d_model"] // cfg["decoder_attention_heads"], cfg["decoder_layers"]),
                        len(names), LANG_ID[lang], **kw)
        for n, ti, oi in zip(names, t, o):
            res[n][lang] = [BOS] + oi  # transformers-style: BOS, language token, caption, EOS
            if ti != oi:
                same = False
                print(f"MISMATCH {n} {lang}: torch {ti} onnx {oi}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"{'identical' if same else 'DIFFERENT'}: {len(names)} images x {len(LANGS)} languages -> {a.out}")
    raise SystemExit(0 if same else 1)


if __name__ == "__main__":
    main()
