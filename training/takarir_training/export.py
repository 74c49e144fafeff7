"""Export to the Optimum VisionEncoderDecoder layout: encoder_model.onnx + decoder_model_merged.onnx + JSON configs."""
import json
import time
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from .data import IMAGE_SIZE, MEAN, RESCALE, ROOT, STD
from .evaluate import load_model
from .features import backbone, bottom
from .tokenizer import BOS, EOS, LANG_ID, PAD

OUT = ROOT / "models" / "default"
OPSET = 17


class Encoder(nn.Module):
    """pixels -> frozen EfficientNet-Lite grid -> projection (+ grid self-attention layers): last_hidden_state [B,cells,d]."""

    def __init__(self, cnn, model):
        super().__init__()
        self.cnn, self.model = cnn, model

    def forward(self, pixel_values):
        if self.model.cut is None:
            f = self.cnn.extract_features(pixel_values)
        else:  # the model carries its own fine-tuned blocks from `cut` on
            f = bottom(self.cnn, pixel_values, self.model.cut)
        return self.model.encode(f.flatten(2).transpose(1, 2))


class Decoder(nn.Module):
    """No-past (past=None) or with-past decoder step returning logits and the self-attention cache."""

    def __init__(self, model, with_past):
        super().__init__()
        self.model, self.with_past = model, with_past

    def forward(self, input_ids, encoder_hidden_states, *past):
        pkv = [(past[2 * i], past[2 * i + 1]) for i in range(len(past) // 2)] if self.with_past else None
        logits, presents = self.model.decode(input_ids, encoder_hidden_states, None, pkv)
        return (logits, *[t for kv in presents for t in kv])


def export(run, ckpt, cfg, log=lambda **kw: print(kw), out=OUT):
    model = load_model(ckpt)
    c = model.cfg
    L, H, dh, d = c["layers"], c["heads"], c["d"] // c["heads"], c["d"]
    out.mkdir(parents=True, exist_ok=True)
    size = cfg.get("image_size", IMAGE_SIZE)
    enc = Encoder(backbone(cfg["backbone"], size), model).eval()
    x = torch.randn(1, 3, size, size)
    torch.onnx.export(enc, (x,), out / "encoder_model.onnx", input_names=["pixel_values"],
                      output_names=["last_hidden_state"], opset_version=OPSET, dynamo=False,
                      dynamic_axes={"pixel_values": {0: "batch_size"}, "last_hidden_state": {0: "batch_size"}})
    pres = [f"present.{i}.{t}" for i in range(L) for t in ("key", "value")]
    past = [f"past_key_values.{i}.{t}" for i in range(L) for t in ("key", "value")]
    mem = torch.randn(2, c["grid"], d)
    ids = torch.tensor([[BOS, LANG_ID["en"], 10], [BOS, LANG_ID["id"], 11]])
    dyn = {"input_ids": {0: "batch_size", 1: "decoder_sequence_length"},
           "encoder_hidden_states": {0: "batch_size"}, "logits": {0: "batch_size", 1: "decoder_sequence_length"}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.onnx.export(Decoder(model, False).eval(), (ids, mem), tmp / "decoder_model.onnx",
                          input_names=["input_ids", "encoder_hidden_states"], output_names=["logits", *pres],
                          opset_version=OPSET, dynamo=False,
                          dynamic_axes={**dyn, **{p: {0: "batch_size", 2: "past_sequence_length + sequence_length"} for p in pres}})
        pk = [torch.randn(2, H, 3, dh) for _ in past]
        torch.onnx.export(Decoder(model, True).eval(), (ids[:, :1], mem, *pk), tmp / "decoder_with_past_model.onnx",
                          input_names=["input_ids", "encoder_hidden_states", *past], output_names=["logits", *pres],
                          opset_version=OPSET, dynamo=False,
                          dynamic_axes={**dyn, **{p: {0: "batch_size", 2: "past_sequence_length"} for p in past},
                                        **{p: {0: "batch_size", 2: "past_sequence_length + 1"} for p in pres}})
        from optimum.onnx import merge_decoders
        merge_decoders(tmp / "decoder_model.onnx", tmp / "decoder_with_past_model.onnx",
                       save_path=out / "decoder_model_merged.onnx")
    shutil.copy(run / "tokenizer.json", out / "tokenizer.json")
    metrics = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").exists() else {}
    lp = metrics.get("length_penalty", 1.0)
    vocab = c["vocab"]
    (out / "config.json").write_text(json.dumps({
        "model_type": "vision-encoder-decoder", "architectures": ["TakarirCaptioner"],
        "encoder": {"model_type": f"efficientnet-{cfg['backbone']}", "image_size": size, "grid": c["grid"],
                    "feature_dim": c["feat_dim"], "hidden_size": d,
                    "grid_attention_layers": c.get("enc_layers", 0)},
        "decoder": {"model_type": "takarir-prenorm-transformer", "vocab_size": vocab, "decoder_layers": L,
                    "decoder_attention_heads": H, "d_model": d, "decoder_ffn_dim": c["ff"],
                    "max_position_embeddings": c["max_len"]},
        "is_encoder_decoder": True, "decoder_start_token_id": BOS, "bos_token_id": BOS, "eos_token_id": EOS,
        "pad_token_id": PAD, "vocab_size": vocab, "decoder_layers": L, "decoder_attention_heads": H, "d_model": d,
        "max_position_embeddings": c["max_len"],
        "languages": {lang: f"<{lang}>" for lang in LANG_ID},
        "model_version": os.environ.get("TAKARIR_MODEL_VERSION", f"takarir-default-{time.strftime('%Y.%m.%d')}"),
        "takarir": {"run": run.name, "checkpoint": ckpt.name, "backbone": cfg["backbone"]}}, indent=2) + "\n")
    (out / "generation_config.json").write_text(json.dumps({
        "decoder_start_token_id": BOS, "bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": PAD,
        "num_beams": 3, "no_repeat_ngram_size": 3, "max_new_tokens": 32, "length_penalty": lp,
        "early_stopping": True}, indent=2) + "\n")
    (out / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "ViTImageProcessor", "do_resize": True,
        "size": {"height": size, "width": size}, "resample": 2, "do_rescale": True,
        "rescale_factor": RESCALE, "do_normalize": True, "image_mean": MEAN, "image_std": STD}, indent=2) + "\n")
    check(model, enc, out, size, log)


def check(model, enc, out, size=IMAGE_SIZE, log=lambda **kw: print(kw)):
    """onnxruntime vs PyTorch on both branches of the merged decoder."""
    e = ort.InferenceSession(str(out / "encoder_model.onnx"))
    dec = ort.InferenceSession(str(out / "decoder_model_merged.onnx"))
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        mem = enc(x)
    mem_o = e.run(None, {"pixel_values": x.numpy()})[0]
    err = {"encoder": float(np.abs(mem_o - mem.numpy()).max())}
    L = model.cfg["layers"]
    H, dh = model.cfg["heads"], model.cfg["d"] // model.cfg["heads"]
    names = [o.name for o in dec.get_outputs()]
    ids = np.array([[BOS, LANG_ID["en"], 20, 30], [BOS, LANG_ID["id"], 40, 50]], np.int64)
    feed = {"input_ids": ids[:, :3], "encoder_hidden_states": mem.numpy(), "use_cache_branch": np.array([False])}
    for i in range(L):
        for t in ("key", "value"):
            feed[f"past_key_values.{i}.{t}"] = np.zeros((2, H, 1, dh), np.float32)
    o1 = dict(zip(names, dec.run(None, feed)))
    with torch.no_grad():
        ref, presents = model.decode(torch.from_numpy(ids), mem)
    err["no_past"] = float(np.abs(o1["logits"] - ref[:, :3].numpy()).max())
    feed.update({"input_ids": ids[:, 3:], "use_cache_branch": np.array([True])})
    for i in range(L):
        for t in ("key", "value"):
            feed[f"past_key_values.{i}.{t}"] = o1[f"present.{i}.{t}"]
    o2 = dict(zip(names, dec.run(None, feed)))
    err["with_past"] = float(np.abs(o2["logits"] - ref[:, 3:].numpy()).max())
    err["present"] = float(np.abs(o2["present.0.key"] - presents[0][0].numpy()).max())
    log(event="onnx_check", max_abs_err=err)
    assert max(err.values()) < 1e-3, err
    m = onnx.load(str(out / "decoder_model_merged.onnx"))
    log(event="onnx_io", inputs={i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in m.graph.input},
        outputs={o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in m.graph.output})
