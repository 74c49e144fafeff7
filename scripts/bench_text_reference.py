"""The Python reference for `takarir bench --text`: the `rapidocr` package (3.10.0) reading the same
photos with the same thread count, timed the same way (end to end from the file path, after a
warm-up). Needs an interpreter with rapidocr installed (a dev venv, not the project's .venv):

    python bench_text_reference.py --threads 2 --runs 20 [--det-max-side 640 --text-score 0.8] photo.jpg [...]

Prints JSON: {"p50_ms", "p95_ms", "lines", "version"}.
"""
import argparse
import json
import time
from importlib.metadata import version


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--det-max-side", type=int, help="Det.limit_type max with this side (Takarir's shipped setting)")
    ap.add_argument("--text-score", type=float, default=0.5)
    ap.add_argument("images", nargs="+")
    a = ap.parse_args()
    from rapidocr import RapidOCR

    params = {
        "EngineConfig.onnxruntime.intra_op_num_threads": a.threads,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        "Global.log_level": "warning",
        "Global.text_score": a.text_score,
    }
    if a.det_max_side:
        params.update({"Det.limit_type": "max", "Det.limit_side_len": a.det_max_side})
    engine = RapidOCR(params=params)
    for img in a.images:
        engine(img)
    times, lines = [], 0
    for i in range(a.runs):
        img = a.images[i % len(a.images)]
        t = time.perf_counter()
        r = engine(img)
        times.append((time.perf_counter() - t) * 1000)
        lines = len(r.txts or ())
    times.sort()
    pct = lambda p: times[min(len(times) - 1, round((len(times) - 1) * p))]
    print(json.dumps({"p50_ms": pct(0.5), "p95_ms": pct(0.95), "lines": lines,
                      "version": version("rapidocr")}))


if __name__ == "__main__":
    main()
