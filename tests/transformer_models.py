"""Small random-weight transformers models (BERT, DistilBERT, GPT-2, ViT) exported to ONNX.

Models are built from tiny config objects (no hub downloads), seeded with
``torch.manual_seed(0)``, put in eval mode and exported with the legacy
TorchScript exporter (``torch.onnx.export(..., dynamo=False)``): it works offline
without ``onnxscript`` and emits a plain graph at exactly the requested opset.

    path = export("bert", "/tmp/tx_models", opset=17)
    feeds = inputs("bert", batch=2, seq=16)

Only the first model output (``last_hidden_state``) is exported.
Requires ``transformers`` (tested with 5.23.0) and ``torch``.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

NAMES = ("bert", "distilbert", "gpt2", "vit")

# Shared small dimensions.
HIDDEN = 64
LAYERS = 2
HEADS = 4
INTERMEDIATE = 128
VOCAB = 1000
MAX_POS = 128
IMAGE = 32
PATCH = 8
CHANNELS = 3


def _config(name: str, attn_implementation: str = "eager"):
    import transformers as tf

    if name == "bert":
        cfg = tf.BertConfig(
            vocab_size=VOCAB,
            hidden_size=HIDDEN,
            num_hidden_layers=LAYERS,
            num_attention_heads=HEADS,
            intermediate_size=INTERMEDIATE,
            max_position_embeddings=MAX_POS,
            type_vocab_size=2,
        )
        cls = tf.BertModel
    elif name == "distilbert":
        cfg = tf.DistilBertConfig(
            vocab_size=VOCAB,
            dim=HIDDEN,
            n_layers=LAYERS,
            n_heads=HEADS,
            hidden_dim=INTERMEDIATE,
            max_position_embeddings=MAX_POS,
        )
        cls = tf.DistilBertModel
    elif name == "gpt2":
        cfg = tf.GPT2Config(
            vocab_size=VOCAB,
            n_embd=HIDDEN,
            n_layer=LAYERS,
            n_head=HEADS,
            n_inner=INTERMEDIATE,
            n_positions=MAX_POS,
            use_cache=False,
            bos_token_id=VOCAB - 1,
            eos_token_id=VOCAB - 1,
        )
        cls = tf.GPT2Model
    elif name == "vit":
        cfg = tf.ViTConfig(
            hidden_size=HIDDEN,
            num_hidden_layers=LAYERS,
            num_attention_heads=HEADS,
            intermediate_size=INTERMEDIATE,
            image_size=IMAGE,
            patch_size=PATCH,
            num_channels=CHANNELS,
        )
        cls = tf.ViTModel
    else:
        raise ValueError(f"unknown model {name!r}; expected one of {NAMES}")
    cfg._attn_implementation = attn_implementation
    return cls, cfg


def build(name: str, attn_implementation: str = "eager"):
    """The seeded, eval-mode torch model for ``name``."""
    import torch

    cls, cfg = _config(name, attn_implementation)
    torch.manual_seed(0)
    kwargs = {"add_pooling_layer": False} if name in ("bert", "vit") else {}
    model = cls(cfg, **kwargs)
    model.eval()
    return model


def input_names(name: str) -> list[str]:
    return ["pixel_values"] if name == "vit" else ["input_ids", "attention_mask"]


def inputs(name: str, batch: int = 2, seq: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    """Realistic feeds; for text models the last row of attention_mask has trailing padding.

    For ViT ``seq`` is ignored (the image is IMAGE x IMAGE).
    """
    rng = np.random.default_rng(seed)
    if name == "vit":
        return {"pixel_values": rng.standard_normal((batch, CHANNELS, IMAGE, IMAGE)).astype(np.float32)}
    if name not in NAMES:
        raise ValueError(f"unknown model {name!r}; expected one of {NAMES}")
    ids = rng.integers(0, VOCAB, size=(batch, seq), dtype=np.int64)
    mask = np.ones((batch, seq), dtype=np.int64)
    if batch > 1 or seq > 1:
        pad = max(1, seq // 4)
        mask[-1, seq - pad :] = 0
        ids[-1, seq - pad :] = 0
    return {"input_ids": ids, "attention_mask": mask}


def _first_output(model, name: str):
    """Wrap a HF model so forward(*inputs) returns only last_hidden_state."""
    import torch

    class FirstOutput(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *args):
            if name == "vit":
                out = self.model(pixel_values=args[0], return_dict=True)
            else:
                kw = {"use_cache": False} if name == "gpt2" else {}
                out = self.model(input_ids=args[0], attention_mask=args[1], return_dict=True, **kw)
            return out.last_hidden_state

    return FirstOutput().eval()


def torch_reference(name: str, feeds: dict[str, np.ndarray], attn_implementation: str = "eager") -> np.ndarray:
    import torch

    model = _first_output(build(name, attn_implementation), name)
    with torch.no_grad():
        return model(*[torch.from_numpy(feeds[k]) for k in input_names(name)]).numpy()


def export(
    name: str,
    path: str,
    opset: int = 17,
    dynamic: bool = False,
    batch: int = 2,
    seq: int = 16,
    attn_implementation: str = "eager",
    force: bool = False,
) -> str:
    """Export ``name`` to ONNX under directory ``path``; returns the .onnx file path.

    Cached by (name, opset, dynamic[, static batch/seq], attn_implementation): an
    existing file is reused unless ``force``.  With ``dynamic`` the batch and
    sequence dims (batch only for ViT) are symbolic ("batch", "seq").
    """
    import torch

    if name not in NAMES:
        raise ValueError(f"unknown model {name!r}; expected one of {NAMES}")
    os.makedirs(path, exist_ok=True)
    tag = "dyn" if dynamic else f"b{batch}" + ("" if name == "vit" else f"s{seq}")
    attn = "" if attn_implementation == "eager" else f"_{attn_implementation}"
    out = os.path.join(path, f"{name}_op{opset}_{tag}{attn}.onnx")
    if os.path.exists(out) and not force:
        return out

    model = _first_output(build(name, attn_implementation), name)
    feeds = inputs(name, batch, seq)
    names = input_names(name)
    args = tuple(torch.from_numpy(feeds[k]) for k in names)
    dynamic_axes = None
    if dynamic:
        if name == "vit":
            dynamic_axes = {"pixel_values": {0: "batch"}, "last_hidden_state": {0: "batch"}}
        else:
            dynamic_axes = {k: {0: "batch", 1: "seq"} for k in names}
            dynamic_axes["last_hidden_state"] = {0: "batch", 1: "seq"}
    tmp = out + ".tmp"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            args,
            tmp,
            dynamo=False,
            opset_version=opset,
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
        )
    os.replace(tmp, out)
    return out


if __name__ == "__main__":  # quick self-check: export all and compare with onnxruntime
    import sys

    import onnxruntime as ort

    d = sys.argv[1] if len(sys.argv) > 1 else "/tmp/tx_models"
    for n in NAMES:
        for op in (17, 18):
            for dyn in (False, True):
                p = export(n, d, opset=op, dynamic=dyn)
                f = inputs(n, 2, 16) if not dyn else inputs(n, 3, 12, seed=1)
                ref = torch_reference(n, f)
                got = ort.InferenceSession(p, providers=["CPUExecutionProvider"]).run(None, f)[0]
                print(f"{n:10s} opset{op} dyn={dyn!s:5s} {got.shape} max|ort-torch|={np.abs(got - ref).max():.2e}")
