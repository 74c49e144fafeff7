"""Extracts the text-reading graphs shipped in models/text/ from the rapidocr 3.10.0 wheel, checking
every hash, so that the files can be reproduced byte for byte. Dev-only (the product loads the
committed files; nothing is fetched at run time).

    python3 scripts/dev/extract_text_models.py [--wheel rapidocr-3.10.0-py3-none-any.whl]

Without --wheel, `pip download rapidocr==3.10.0 --no-deps` fetches the wheel from PyPI into a
temporary folder. Writes models/text/{PP-OCRv6_det_small,PP-OCRv6_rec_small,
ch_ppocr_mobile_v2.0_cls_mobile}.onnx, LICENSE and MODEL_LICENSES.md (the wheel's licence and
model-attribution notice, which Apache-2.0 redistribution requires).
"""
import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "models" / "text"
WHEEL = "rapidocr-3.10.0-py3-none-any.whl"
WHEEL_SHA256 = "2fc34e26cd0f48514804a94f8832283039c7334076bff60768b1fed9ad068050"
# SHA-256 as listed in the wheel's rapidocr/default_models.yaml and MODEL_LICENSES.md.
FILES = {
    "rapidocr/models/PP-OCRv6_det_small.onnx": "090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f",
    "rapidocr/models/PP-OCRv6_rec_small.onnx": "6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884",
    "rapidocr/models/ch_ppocr_mobile_v2.0_cls_mobile.onnx": "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
}
NOTICES = {
    "rapidocr-3.10.0.dist-info/licenses/LICENSE": "LICENSE",
    "rapidocr-3.10.0.dist-info/licenses/MODEL_LICENSES.md": "MODEL_LICENSES.md",
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wheel", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel
        if wheel is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                            "rapidocr==3.10.0", "-d", tmp], check=True)
            wheel = Path(tmp) / WHEEL
        got = sha256(wheel.read_bytes())
        if got != WHEEL_SHA256:
            sys.exit(f"{wheel}: sha256 {got}, expected {WHEEL_SHA256}")
        OUT.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as z:
            for name, want in FILES.items():
                data = z.read(name)
                if sha256(data) != want:
                    sys.exit(f"{name}: sha256 {sha256(data)}, expected {want}")
                (OUT / Path(name).name).write_bytes(data)
                print(f"{Path(name).name}  {len(data)} bytes  sha256 {want}")
            for name, dest in NOTICES.items():
                (OUT / dest).write_bytes(z.read(name))
                print(f"{dest}  (from {name})")


if __name__ == "__main__":
    main()
