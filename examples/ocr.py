"""A real first run: read a line of text with PP-OCR's recognizer, compiled by tritonnx.

Renders TEXT with Pillow, recognizes it with the PP-OCRv4 text recognizer that ships inside
the `rapidocr-onnxruntime` wheel (pretrained weights, Apache-2.0; only its model files are
used: `pip install --no-deps rapidocr-onnxruntime==1.4.4`), and prints what tritonnx read
beside what onnxruntime read from the same model. Run from the repository root:

    python examples/ocr.py ["some text"]

The recognizer takes a [1, 3, 48, W] image (RGB, scaled to [-1, 1]) and gives, per
column of 8 pixels, a softmax over its character list (kept in the model's metadata,
`character`) plus the CTC blank and a space: greedy CTC decoding reads the line.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from PIL import Image, ImageDraw, ImageFont

import tritonnx

MODEL = "ch_PP-OCRv4_rec_infer.onnx"


def model_path() -> Path:
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the PP-OCR models are missing: pip install --no-deps rapidocr-onnxruntime==1.4.4")
    return Path(spec.submodule_search_locations[0]) / "models" / MODEL


def render(text: str, height: int = 48) -> np.ndarray:
    """`text` in black on white, `height` pixels high, as the recognizer's input
    [1, 3, height, W] float32 in [-1, 1] (W a multiple of 8)."""
    font = ImageFont.load_default(size=int(height * 0.6))
    left, top, right, bottom = font.getbbox(text)
    width = (right - left + height // 2 + 7) // 8 * 8
    image = Image.new("RGB", (width, height), "white")
    ImageDraw.Draw(image).text(
        ((width - (right - left)) // 2 - left, (height - (bottom - top)) // 2 - top), text, font=font, fill="black"
    )
    x = np.asarray(image, dtype=np.float32) / 255.0
    return ((x - 0.5) / 0.5).transpose(2, 0, 1)[None].copy()


def characters(path: Path) -> list[str]:
    """The recognizer's classes: the CTC blank, the characters of the model's metadata, a space."""
    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return ["", *meta["character"].splitlines(), " "]


def decode(probs: np.ndarray, chars: list[str]) -> str:
    """Greedy CTC: the best class per column, repeats merged, blanks dropped. probs [1, T, C]."""
    best = probs[0].argmax(axis=-1)
    return "".join(chars[c] for i, c in enumerate(best) if c != 0 and (i == 0 or c != best[i - 1]))


def main(text: str = "tritonnx 2026") -> tuple[str, str, float]:
    path = model_path()
    chars = characters(path)
    x = render(text)
    sess = tritonnx.InferenceSession(str(path))  # compiled once; any width runs (dynamic sizes)
    name = sess.get_inputs()[0].name
    got = sess.run(None, {name: x})[0]
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {name: x})[0]
    error = float(np.abs(got - ref).max())
    print(f"rendered:    {text!r} ({x.shape[3]}x{x.shape[2]} pixels)")
    print(f"tritonnx:    {decode(got, chars)!r}")
    print(f"onnxruntime: {decode(ref, chars)!r}")
    print(f"max abs difference of the {got.shape[1]}x{got.shape[2]} probabilities: {error:.2g}")
    return decode(got, chars), decode(ref, chars), error


if __name__ == "__main__":
    main(*sys.argv[1:2])
