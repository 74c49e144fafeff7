"""Build the tiny reference captioning model and the parity fixtures (dev-only, not run by CI).

Run from the repository root (needs samples/*.jpg, see scripts/dev/make_samples.py):

    /work/devenv/venv/bin/python scripts/dev/make_parity_fixture.py

Environment used: torch 2.15 (CPU), transformers 4.57.6, optimum-onnx 0.1.0
(optimum-cli), onnx 1.23.2, onnxruntime 1.32.0, tokenizers, pillow.

What it does / writes:
  * trains a tiny byte-level BPE tokenizer (vocab 400 + `<|endoftext|>`) on
    neutral stdlib text (Zen of Python + a few stdlib module docstrings);
  * builds a randomly initialised VisionEncoderDecoderModel (ViT 32x32/patch 8,
    hidden 32, 2 layers, 4 heads + GPT-2 n_embd 32, 2 layers, 4 heads, cross
    attention), seed 0, with a few weights scaled so that greedy/beam search
    sometimes emit EOS before max length;
  * exports it with `optimum-cli export onnx --task image-to-text-with-past` to
      fixtures/parity/vit-gpt2-tiny/            (encoder_model.onnx, decoder_model_merged.onnx)
      fixtures/parity/vit-gpt2-tiny-split/      (--no-post-process: decoder_model.onnx,
                                                 decoder_with_past_model.onnx, encoder_model.onnx)
      fixtures/parity/vit-gpt2-tiny-quantized/  (quantize_dynamic int8 of the merged export:
                                                 encoder_model_quantized.onnx,
                                                 decoder_model_merged_quantized.onnx)
    each with config.json, generation_config.json, preprocessor_config.json,
    tokenizer.json, tokenizer_config.json, special_tokens_map.json;
  * records transformers generate() reference outputs for samples/*.jpg in
    fixtures/parity/expected.json and the ONNX IO signatures + checks in
    fixtures/parity/README.md (the section between the GENERATED IO markers);
  * verifies with onnxruntime that a greedy KV-cache loop over the merged (and
    split, and quantized) decoder reproduces the PyTorch greedy tokens.
"""
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import transformers
from PIL import Image, ImageOps
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (GPT2Config, GPT2TokenizerFast, VisionEncoderDecoderConfig,
                          VisionEncoderDecoderModel, ViTConfig, ViTImageProcessor)

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "fixtures" / "parity"
MERGED = FIX / "vit-gpt2-tiny"
SPLIT = FIX / "vit-gpt2-tiny-split"
QUANT = FIX / "vit-gpt2-tiny-quantized"
EOT = "<|endoftext|>"
SEED = 0
VOCAB = 400  # BPE vocab incl. the 256 byte symbols; <|endoftext|> is appended -> id 400
EOS_ROW_SCALE = float(os.environ.get("EOS_ROW_SCALE", "3.0"))
EOS_SHIFT = float(os.environ.get("EOS_SHIFT", "2.0"))
DEC_INIT = float(os.environ.get("DEC_INIT", "0.2"))  # decoder initializer_range
IMAGES = ["astronaut", "chelsea", "coffee", "rocket", "chelsea-exif-rotated"]
KEEP_JSON = ["config.json", "generation_config.json", "preprocessor_config.json",
             "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]

CASES = [
    ("greedy", dict(max_new_tokens=20, num_beams=1, do_sample=False), False),
    ("greedy_rep1.3", dict(max_new_tokens=20, num_beams=1, do_sample=False, repetition_penalty=1.3), False),
    ("greedy_min10", dict(max_new_tokens=20, num_beams=1, do_sample=False, min_new_tokens=10), False),
    ("beam3", dict(max_new_tokens=20, num_beams=3, do_sample=False), False),
    ("beam5_ret3", dict(max_new_tokens=20, num_beams=5, do_sample=False, num_return_sequences=3), False),
    ("beam3_norepeat2", dict(max_new_tokens=20, num_beams=3, do_sample=False, no_repeat_ngram_size=2), False),
    ("beam3_lp0.5_early", dict(max_new_tokens=20, num_beams=3, do_sample=False, length_penalty=0.5,
                               early_stopping=True), False),
    ("beam4_never_lp2", dict(max_new_tokens=20, num_beams=4, do_sample=False, early_stopping="never",
                             length_penalty=2.0), False),
    ("beam3_batched", dict(max_new_tokens=20, num_beams=3, do_sample=False), True),
]


def corpus() -> list:
    import codecs
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):
        import this  # the Zen of Python (rot13-encoded in this.s)
    zen = codecs.decode(this.s, "rot13")
    import argparse, collections, functools, json as js, string, textwrap, itertools, pathlib
    docs = [zen]
    for mod in (string, textwrap, collections, functools, js, argparse, pathlib, itertools):
        docs.append(inspect.getdoc(mod) or "")
    for obj in (str.split, str.join, list.sort, sorted, zip, map, filter, range, dict.get, open):
        docs.append(inspect.getdoc(obj) or "")
    return [d for d in docs if d]


def build_tokenizer(out: Path) -> GPT2TokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator(corpus(), trainer=trainer)
    tok.add_special_tokens([EOT])
    fast = GPT2TokenizerFast(tokenizer_object=tok, bos_token=EOT, eos_token=EOT, unk_token=EOT, pad_token=EOT,
                             model_max_length=64)
    fast.save_pretrained(out)
    return fast


def build_model(tok: GPT2TokenizerFast) -> VisionEncoderDecoderModel:
    eot = tok.convert_tokens_to_ids(EOT)
    enc = ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
                    num_attention_heads=4, intermediate_size=64)
    dec = GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=2, n_head=4, n_inner=64,
                     add_cross_attention=True, is_decoder=True, bos_token_id=eot, eos_token_id=eot,
                     pad_token_id=eot, decoder_start_token_id=eot, tie_word_embeddings=False,
                     initializer_range=DEC_INIT)
    cfg = VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
    cfg.decoder_start_token_id = eot
    cfg.pad_token_id = eot
    cfg.eos_token_id = eot
    cfg.bos_token_id = eot
    cfg.tie_word_embeddings = False
    torch.manual_seed(SEED)
    model = VisionEncoderDecoderModel(config=cfg).eval()
    with torch.no_grad():
        # lm_head is untied from wte so that this only changes the output side:
        # random weights almost never pick EOS, so make the EOS row of lm_head
        # longer; its logit (h . w_eos) then wins for some hidden states only.
        model.decoder.lm_head.weight[eot] *= EOS_ROW_SCALE
        # ... and push it towards the mean final hidden state (measured on seeded
        # random pixels / random token prefixes, not on the samples) so that
        # EOS gets likelier overall: EOS_SHIFT scales that mean direction.
        g = torch.Generator().manual_seed(SEED + 1)
        pv = torch.rand((8, 3, 32, 32), generator=g) * 2 - 1
        ids = torch.randint(0, eot, (8, 12), generator=g)
        ids[:, 0] = eot
        h = model(pixel_values=pv, decoder_input_ids=ids, output_hidden_states=True).decoder_hidden_states[-1]
        mean_h = h[:, 1:].reshape(-1, h.shape[-1]).mean(0)
        model.decoder.lm_head.weight[eot] += EOS_SHIFT * mean_h / mean_h.norm()
    gc = model.generation_config
    gc.decoder_start_token_id = eot
    gc.bos_token_id = eot
    gc.eos_token_id = eot
    gc.pad_token_id = eot
    return model


def load_image(name: str) -> Image.Image:
    return ImageOps.exif_transpose(Image.open(ROOT / "samples" / f"{name}.jpg")).convert("RGB")


def strip_after_eos(seq: list, eos: int) -> list:
    """Keep the decoder start token, then everything up to and including the first EOS."""
    for i in range(1, len(seq)):
        if seq[i] == eos:
            return seq[: i + 1]
    return seq


def run_cases(model, proc, tok, pixel_values: dict) -> list:
    eos = model.generation_config.eos_token_id
    cases = []
    for name, kw, batched in CASES:
        full = dict(kw, return_dict_in_generate=True, output_scores=True)
        results = []
        groups = [IMAGES[:4]] if batched else [[n] for n in IMAGES]
        for group in groups:
            pv = torch.stack([pixel_values[n] for n in group])
            with torch.no_grad():
                out = model.generate(pixel_values=pv, **full)
            nret = kw.get("num_return_sequences", 1)
            seqs = [strip_after_eos(s, eos) for s in out.sequences.tolist()]
            ts = None
            if kw["num_beams"] == 1:
                ts = model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
            for bi, img in enumerate(group):
                rows = list(range(bi * nret, (bi + 1) * nret))
                r = {"image": img, "sequences": [seqs[j] for j in rows],
                     "sequences_scores": None, "transition_scores": None, "transition_scores_sum": None,
                     "texts": [tok.decode(seqs[j], skip_special_tokens=True) for j in rows]}
                if getattr(out, "sequences_scores", None) is not None and kw["num_beams"] > 1:
                    r["sequences_scores"] = [float(out.sequences_scores[j]) for j in rows]
                if ts is not None:
                    r["transition_scores"] = [[float(x) for x in ts[j][: len(seqs[j]) - 1]] for j in rows]
                    r["transition_scores_sum"] = [float(sum(t)) for t in r["transition_scores"]]
                results.append(r)
        cases.append({"name": name, "kwargs": full, "batched": batched, "results": results})
    return cases


def check_interesting(cases: list, eos: int) -> dict:
    lengths, eos_beams, n_beam = set(), 0, 0
    by = {c["name"]: c for c in cases}
    for c in cases:
        for r in c["results"]:
            for s in r["sequences"]:
                lengths.add(len(s))
                if c["kwargs"]["num_beams"] > 1:
                    n_beam += 1
                    eos_beams += int(s[-1] == eos and len(s) > 1)
    diff = sum(a["sequences"] != b["sequences"]
               for a, b in zip(by["beam3"]["results"], by["beam3_norepeat2"]["results"]))
    rep = sum(a["sequences"] != b["sequences"]
              for a, b in zip(by["greedy"]["results"], by["greedy_rep1.3"]["results"]))
    mn = sum(a["sequences"] != b["sequences"]
             for a, b in zip(by["greedy"]["results"], by["greedy_min10"]["results"]))
    batched_vs_single = [a["sequences"] == b["sequences"]
                         for a, b in zip(by["beam3"]["results"][:4], by["beam3_batched"]["results"])]
    summary = {"distinct_lengths": sorted(lengths), "eos_terminated_beam_seqs": eos_beams,
               "beam_seqs": n_beam, "images_where_no_repeat_ngram_changes_beam3": diff,
               "images_where_rep_penalty_changes_greedy": rep, "images_where_min_new_tokens_changes_greedy": mn,
               "batched_equals_single_beam3": batched_vs_single}
    return summary


def export(model_dir: Path, out: Path, no_post: bool) -> None:
    cmd = [str(Path(sys.executable).with_name("optimum-cli")), "export", "onnx", "--task",
           "image-to-text-with-past", "--model", str(model_dir), str(out)]
    if no_post:
        cmd.insert(-1, "--no-post-process")
    subprocess.run(cmd, check=True)


def tidy(out: Path, keep_onnx: list) -> None:
    for p in out.iterdir():
        if p.name not in keep_onnx + KEEP_JSON:
            p.unlink() if p.is_file() else shutil.rmtree(p)
    for k in keep_onnx + KEEP_JSON:
        assert (out / k).exists(), out / k


def io_sig(path: Path) -> list:
    import onnxruntime as ort
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    lines = [f"#### `{path.relative_to(FIX)}` ({path.stat().st_size} bytes)", "", "| kind | name | dtype | shape |",
             "|---|---|---|---|"]
    for kind, xs in (("input", s.get_inputs()), ("output", s.get_outputs())):
        for x in xs:
            lines.append(f"| {kind} | `{x.name}` | {x.type} | {x.shape} |")
    return lines + [""]


def ort_greedy(enc_path: Path, dec_paths, pv: np.ndarray, eos: int, max_new: int) -> list:
    """Greedy loop with KV cache. dec_paths: merged path, or (decoder, decoder_with_past)."""
    import onnxruntime as ort
    opt = ort.SessionOptions()
    opt.intra_op_num_threads = 1
    mk = lambda p: ort.InferenceSession(str(p), opt, providers=["CPUExecutionProvider"])
    enc = mk(enc_path)
    ehs = enc.run(["last_hidden_state"], {"pixel_values": pv[None]})[0]
    merged = not isinstance(dec_paths, tuple)
    d0 = mk(dec_paths if merged else dec_paths[0])
    d1 = d0 if merged else mk(dec_paths[1])
    past_names = [i.name for i in d0.get_inputs() if i.name.startswith("past_key_values.")]
    if merged:
        n_head, head_dim = 4, 8
        past = {n: np.zeros((1, n_head, 0, head_dim), np.float32) for n in past_names}
    else:
        past = {}
    seq = [eos]
    for step in range(max_new):
        sess = d0 if step == 0 else d1
        feed = {"input_ids": np.array([[seq[-1]]] if step > 0 else [seq], dtype=np.int64),
                "encoder_hidden_states": ehs}
        names = [i.name for i in sess.get_inputs()]
        if "use_cache_branch" in names:
            feed["use_cache_branch"] = np.array([step > 0])
        if step > 0 or merged:
            feed.update({n: past[n] for n in names if n.startswith("past_key_values.")})
        extra = set(names) - set(feed)
        assert not extra, f"decoder needs more inputs: {extra}"
        outs = sess.run(None, feed)
        onames = [o.name for o in sess.get_outputs()]
        res = dict(zip(onames, outs))
        tok = int(res["logits"][0, -1].argmax())
        for n, v in res.items():
            if n.startswith("present."):
                k = "past_key_values." + n[len("present."):]
                # the split decoder_with_past does not re-emit the cross-attention (encoder) cache
                if not merged and step > 0 and ".encoder." in n:
                    continue
                past[k] = v
        seq.append(tok)
        if tok == eos:
            break
    return seq


def main() -> None:
    torch.set_num_threads(2)
    tmp = Path(tempfile.mkdtemp(prefix="parity-"))
    src = tmp / "hf"
    tok = build_tokenizer(src)
    eos = tok.convert_tokens_to_ids(EOT)
    model = build_model(tok)
    proc = ViTImageProcessor(do_resize=True, size={"height": 32, "width": 32}, resample=2, do_rescale=True,
                             rescale_factor=1 / 255, do_normalize=True, image_mean=[0.5, 0.5, 0.5],
                             image_std=[0.5, 0.5, 0.5])
    model.save_pretrained(src)
    proc.save_pretrained(src)

    pixel_values = {n: proc(images=load_image(n), return_tensors="pt").pixel_values[0] for n in IMAGES}
    d = (pixel_values["chelsea"] - pixel_values["chelsea-exif-rotated"]).abs().max().item()
    print("max |pixel_values(chelsea) - pixel_values(chelsea-exif-rotated)| =", d)

    cases = run_cases(model, proc, tok, pixel_values)
    summary = check_interesting(cases, eos)
    print(json.dumps(summary))
    for c in cases:
        print(c["name"], [(r["image"][:7], [len(s) for s in r["sequences"]],
                           [s[-1] == eos for s in r["sequences"]]) for r in c["results"]])
    if os.environ.get("DRY"):
        for c in cases[:2]:
            for r in c["results"]:
                print(c["name"], r["image"], r["sequences"], r["texts"])
        return

    for o in (MERGED, SPLIT, QUANT):
        shutil.rmtree(o, ignore_errors=True)
    export(src, MERGED, no_post=False)
    export(src, SPLIT, no_post=True)
    for o in (MERGED, SPLIT):
        for j in KEEP_JSON:
            if not (o / j).exists() and (src / j).exists():
                shutil.copy(src / j, o / j)
    tidy(MERGED, ["encoder_model.onnx", "decoder_model_merged.onnx"])
    tidy(SPLIT, ["encoder_model.onnx", "decoder_model.onnx", "decoder_with_past_model.onnx"])
    from onnxruntime.quantization import QuantType, quantize_dynamic
    QUANT.mkdir(parents=True)
    for name in ("encoder_model", "decoder_model_merged"):
        quantize_dynamic(MERGED / f"{name}.onnx", QUANT / f"{name}_quantized.onnx", weight_type=QuantType.QInt8)
    for j in KEEP_JSON:
        shutil.copy(MERGED / j, QUANT / j)

    # ONNX greedy checks against PyTorch greedy
    greedy = {r["image"]: r["sequences"][0] for r in cases[0]["results"]}
    checks = []
    for label, encp, decp in (
            ("merged", MERGED / "encoder_model.onnx", MERGED / "decoder_model_merged.onnx"),
            ("split", SPLIT / "encoder_model.onnx", (SPLIT / "decoder_model.onnx",
                                                      SPLIT / "decoder_with_past_model.onnx")),
            ("quantized", QUANT / "encoder_model_quantized.onnx", QUANT / "decoder_model_merged_quantized.onnx")):
        ok = []
        for n in IMAGES:
            seq = ort_greedy(encp, decp, pixel_values[n].numpy(), eos, 20)
            ok.append((n, seq == greedy[n], seq))
        checks.append((label, ok))
        print(label, [(n, m) for n, m, _ in ok])

    doc = {"transformers_version": transformers.__version__,
           "model_dirs": {"merged": "fixtures/parity/vit-gpt2-tiny", "split": "fixtures/parity/vit-gpt2-tiny-split",
                          "quantized": "fixtures/parity/vit-gpt2-tiny-quantized"},
           "images": {n: {"path": f"samples/{n}.jpg",
                          "pixel_values": [float(x) for x in pixel_values[n].flatten().tolist()]} for n in IMAGES},
           "cases": cases}
    (FIX / "expected.json").write_text(json.dumps(doc, indent=1) + "\n")

    io = ["<!-- BEGIN GENERATED IO -->", ""]
    for p in sorted(FIX.glob("*/*.onnx")):
        io += io_sig(p)
    io += ["Greedy ONNX-vs-PyTorch check (max_new_tokens 20, KV cache loop):", ""]
    for label, ok in checks:
        io.append(f"* {label}: " + ", ".join(f"{n}={'match' if m else 'MISMATCH'}" for n, m, _ in ok))
    io += ["", "Summary: `" + json.dumps(summary) + "`", "", "<!-- END GENERATED IO -->"]
    readme = FIX / "README.md"
    text = readme.read_text() if readme.exists() else "# Parity fixtures\n\n<!-- BEGIN GENERATED IO -->\n<!-- END GENERATED IO -->\n"
    head, rest = text.split("<!-- BEGIN GENERATED IO -->", 1)
    tail = rest.split("<!-- END GENERATED IO -->", 1)[1]
    readme.write_text(head + "\n".join(io) + tail)
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
