"""ONNX external data: tensors whose bytes live in files beside the model
(https://onnx.ai/onnx/repo-docs/ExternalData.html), as every model over protobuf's 2 GB
limit keeps its weights.

A tensor with `data_location == EXTERNAL` names its file in its `external_data` entries:
`location` (relative to the model's directory), `offset` and `length` in bytes; the bytes
are the tensor's raw little-endian data. `locate` prepares a model read with
`onnx.load(path, load_external_data=False)`: small tensors are read into the proto (shape
arithmetic and constant folding read them), big initializers stay in their files and get a
`basepath` entry (one of the spec's keys) with the model's directory. `array` then maps
such a tensor's bytes with `numpy.memmap` (copy-on-write: nothing is read until used, and
the weights are never held twice); `digest` hashes them and `save` copies them into an
artifact's `model.onnx.data`, both streaming in chunks.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
from onnx import external_data_helper, numpy_helper

from tritonnx.errors import ModelLoadError

MAP_BYTES = 4096  # initializers at least this big stay in their file, memory-mapped
CHUNK = 1 << 22  # bytes read at a time when hashing and copying
DATA_SUFFIX = ".data"  # the artifact's model.onnx keeps its external tensors in model.onnx.data
ALIGN = 4096  # bytes: each tensor's offset in a file `save` writes (ORT can map aligned data)


def is_external(t: onnx.TensorProto) -> bool:
    return t.data_location == onnx.TensorProto.EXTERNAL


def _all_tensors(graph: onnx.GraphProto, top: bool = True) -> Iterator[tuple[onnx.TensorProto, bool]]:
    """(tensor, whether it is an initializer of the top graph) for every TensorProto of
    `graph`: initializers and tensor attributes, subgraphs included."""
    for t in graph.initializer:
        yield t, top
    for node in graph.node:
        for a in node.attribute:
            for t in ([a.t] if a.HasField("t") else []) + list(a.tensors):
                yield t, False
            for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                yield from _all_tensors(g, False)


def has_external(model: onnx.ModelProto) -> bool:
    return any(is_external(t) for t, _ in _all_tensors(model.graph))


def _entries(t: onnx.TensorProto) -> dict[str, str]:
    return {e.key: e.value for e in t.external_data}


def _nbytes(t: onnx.TensorProto) -> int | None:
    """The raw size of a tensor of fixed-width elements; None for strings and packed types
    (int4, float4), whose bytes numpy cannot map one element per item."""
    if t.data_type in (onnx.TensorProto.STRING, onnx.TensorProto.UNDEFINED):
        return None
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type))
    except (KeyError, TypeError, ValueError):
        return None
    if dtype.name in ("int4", "uint4", "float4_e2m1fn", "int2", "uint2"):
        return None
    return math.prod(t.dims) * dtype.itemsize


def _where(t: onnx.TensorProto) -> tuple[Path, int, int]:
    """(file, offset, length) of a located external tensor. Raises ModelLoadError naming the
    tensor when its entries or its file do not hold its bytes."""
    entries = _entries(t)
    if "basepath" not in entries:
        raise ModelLoadError(
            f"tensor '{t.name}' keeps its data in external file '{entries.get('location', '?')}', "
            "which was not loaded: pass the model's path."
        )
    path = Path(entries["basepath"]) / entries.get("location", "")
    try:
        info = external_data_helper.ExternalDataInfo(t)  # checks offset and length are non-negative
        size = path.stat().st_size
    except (ValueError, OSError) as e:
        raise ModelLoadError(f"tensor '{t.name}': its external data in '{path}' cannot be read ({e}).") from None
    offset = info.offset or 0
    length = info.length if info.length is not None else size - offset
    if offset + length > size:
        raise ModelLoadError(
            f"tensor '{t.name}': its external data ({length} bytes at offset {offset}) runs past the end of "
            f"'{path}' ({size} bytes); check that the file is complete."
        )
    expected = _nbytes(t)
    if expected is not None and expected != length:
        raise ModelLoadError(
            f"tensor '{t.name}' of shape {list(t.dims)} needs {expected} bytes; its external data in '{path}' "
            f"has {length}."
        )
    return path, offset, length


def locate(model: onnx.ModelProto, base_dir: str | os.PathLike) -> None:
    """In place, for a model read without its external data from `base_dir` (and checked by
    path, so every location is a file inside `base_dir`): reads into the proto every
    external tensor but the initializers of the top graph of at least MAP_BYTES, and records
    `base_dir` (absolute) as the `basepath` entry of those. Raises ModelLoadError naming a
    tensor whose file is too short for it."""
    base = os.path.abspath(base_dir)
    for t, top in _all_tensors(model.graph):
        if not is_external(t):
            continue
        size = _nbytes(t)
        if top and size is not None and size >= MAP_BYTES:
            entries = [e for e in t.external_data if e.key != "basepath"]
            del t.external_data[:]
            t.external_data.extend(entries)
            t.external_data.add(key="basepath", value=base)
            _where(t)
        else:
            try:
                external_data_helper.load_external_data_for_tensor(t, base)
            except (ValueError, OSError) as e:
                raise ModelLoadError(f"tensor '{t.name}': its external data cannot be read ({e}).") from None


def array(t: onnx.TensorProto) -> np.ndarray:
    """A tensor's value: for a located external tensor, its file's bytes mapped copy-on-write
    (writable, private: torch and MLIR take the memory as it is, and nothing reaches the
    file); otherwise `numpy_helper.to_array`."""
    if not is_external(t):
        return numpy_helper.to_array(t)
    path, offset, length = _where(t)
    if _nbytes(t) is None:  # packed or string elements: onnx unpacks them (in memory)
        return numpy_helper.to_array(t, base_dir=str(path.parent))
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type)).newbyteorder("<")
    shape = tuple(int(d) for d in t.dims)
    if length == 0:
        return np.zeros(shape, dtype)
    if offset % dtype.itemsize:  # misaligned elements: read it (one copy, still not two)
        with open(path, "rb") as f:
            f.seek(offset)
            return np.frombuffer(f.read(length), dtype).reshape(shape).copy()
    return np.memmap(path, dtype=dtype, mode="c", offset=offset, shape=shape)


def _chunks(t: onnx.TensorProto) -> Iterator[bytes]:
    path, offset, length = _where(t)
    with open(path, "rb") as f:
        f.seek(offset)
        while length > 0:
            chunk = f.read(min(CHUNK, length))
            if not chunk:
                raise ModelLoadError(f"tensor '{t.name}': '{path}' ended while it was read; it changed meanwhile.")
            length -= len(chunk)
            yield chunk


def without_basepath(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` without the `basepath` entries `locate` added (a proto whose big
    tensors are external is small): what the model is, wherever its directory."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for t, _ in _all_tensors(out.graph):
        if is_external(t):
            kept = [e for e in t.external_data if e.key != "basepath"]
            del t.external_data[:]
            t.external_data.extend(kept)
    return out


def digest(model: onnx.ModelProto, h) -> None:
    """Feeds the bytes of every located external tensor of `model` to hash `h`, in order,
    each after its name and length."""
    for t, _ in _all_tensors(model.graph):
        if is_external(t):
            h.update(f"{t.name}:{_where(t)[2]}:".encode())
            for chunk in _chunks(t):
                h.update(chunk)


def save(model: onnx.ModelProto, path: Path) -> None:
    """Saves `model` at `path`; its external tensors go into one file beside it,
    `<name>.data` (each at an offset aligned to ALIGN bytes), copied in chunks."""
    if not has_external(model):
        onnx.save(model, str(path))
        return
    out = without_basepath(model)
    data = path.with_name(path.name + DATA_SUFFIX)
    located = [t for t, _ in _all_tensors(model.graph) if is_external(t)]
    targets = [t for t, _ in _all_tensors(out.graph) if is_external(t)]
    with open(data, "wb") as f:
        for src, dst in zip(located, targets):
            f.write(b"\0" * (-f.tell() % ALIGN))
            offset = f.tell()
            for chunk in _chunks(src):
                f.write(chunk)
            del dst.external_data[:]
            for key, value in (("location", data.name), ("offset", offset), ("length", f.tell() - offset)):
                dst.external_data.add(key=key, value=str(value))
    onnx.save(out, str(path))
