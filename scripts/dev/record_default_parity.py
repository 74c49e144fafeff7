"""Records what the shipped default model says about the repo's sample photos, in PyTorch and in
ONNX Runtime (Python), so the Rust engine's test (crates/engine/tests/default_model.rs) can demand
the same tokens in CI without ../shared or PyTorch. Dev-only; needs the training venv and the
checkpoint named in models/default/config.json.

    PYTHONPATH=training training/.venv/bin/python scripts/dev/record_default_parity.py

Writes fixtures/default-model/<name>.png (the photo upright and resized to the model's input size,
config.json encoder.image_size, with PIL's bilinear filter; lossless, so every runtime sees identical
pixels) and expected.json ({name: {lang: [BOS, LANG, ..., EOS]}}, beam search with
models/default/generation_config.json).
"""
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from PIL import Image, ImageOps

from takarir_training.data import LANGS, RUNS, normalise
from takarir_training.evaluate import load_model
from takarir_training.export import Encoder
from takarir_training.features import backbone
from takarir_training.generate import TorchStepper, beam_search
from takarir_training.parity import OrtStepper
from takarir_training.tokenizer import BOS, LANG_ID

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "default"
OUT = ROOT / "fixtures" / "default-model"
SAMPLES = ["astronaut", "chelsea", "coffee", "rocket"]


def main():
    torch.set_num_threads(2)
    cfg = json.loads((MODEL / "config.json").read_text())
    gen = json.loads((MODEL / "generation_config.json").read_text())
    model = load_model(RUNS / cfg["takarir"]["run"] / cfg["takarir"]["checkpoint"])
    size = cfg["encoder"]["image_size"]
    enc = Encoder(backbone(cfg["takarir"]["backbone"], size), model).eval()
    OUT.mkdir(parents=True, exist_ok=True)
    xs = []
    for name in SAMPLES:
        img = ImageOps.exif_transpose(Image.open(ROOT / "samples" / f"{name}.jpg")).convert("RGB")
        img = img.resize((size, size), Image.BILINEAR)
        img.save(OUT / f"{name}.png", optimize=True)
        xs.append(normalise(img))
    x = np.stack(xs)
    with torch.no_grad():
        mem_t = enc(torch.from_numpy(x))
    mem_o = ort.InferenceSession(str(MODEL / "encoder_model.onnx")).run(None, {"pixel_values": x})[0]
    dec = ort.InferenceSession(str(MODEL / "decoder_model_merged.onnx"))
    kw = dict(num_beams=gen["num_beams"], no_repeat=gen["no_repeat_ngram_size"],
              length_penalty=gen["length_penalty"], max_new_tokens=gen["max_new_tokens"])
    heads, d = cfg["decoder_attention_heads"], cfg["d_model"]
    expected = {n: {} for n in SAMPLES}
    for lang in LANGS:
        t = beam_search(TorchStepper(model, mem_t), len(SAMPLES), LANG_ID[lang], **kw)
        o = beam_search(OrtStepper(dec, mem_o, heads, d // heads, cfg["decoder_layers"]), len(SAMPLES), LANG_ID[lang], **kw)
        for n, ti, oi in zip(SAMPLES, t, o):
            assert ti == oi, f"PyTorch and ONNX Runtime differ on {n} {lang}: {ti} vs {oi}"
            expected[n][lang] = [BOS] + ti
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(json.dumps(expected))


if __name__ == "__main__":
    main()
