"""Read TensorFlow.js weight manifests as numbers, without TensorFlow or JavaScript.

A manifest (`*-weights_manifest.json`) is a list of groups, each naming its shard files ("paths", concatenated in
order) and its weights: `{name, shape, dtype, quantization?}`. Quantised entries store one uint8 or uint16 per value
with an affine map (value = q * scale + min) or float16 halves; the rest are raw little-endian float32/int32. No
maintained Python package reads this format without TensorFlow (tensorflowjs' converter imports it), so this
module reads it itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from distill.errors import DistillError

RAW = {"float32": np.float32, "int32": np.int32}
QUANTISED = {"uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}


def read_manifest(manifest: Path) -> dict[str, np.ndarray]:
    """{weight name: array of its shape} for every weight of every group, dequantised to float32."""
    try:
        groups = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DistillError(f"{manifest} is not a readable TF.js weights manifest ({err})") from err
    weights: dict[str, np.ndarray] = {}
    for group in groups:
        data = b"".join((manifest.parent / name).read_bytes() for name in group["paths"])
        offset = 0
        for entry in group["weights"]:
            value, offset = _entry(data, offset, entry, manifest)
            weights[entry["name"]] = value
        if offset != len(data):
            raise DistillError(f"{manifest}: its weights take {offset:,} bytes, the shards hold {len(data):,}")
    return weights


def _entry(data: bytes, offset: int, entry: dict, manifest: Path) -> tuple[np.ndarray, int]:
    """The entry's array, read at `offset`, and the offset after it."""
    count = int(np.prod(entry["shape"], dtype=np.int64))
    quant = entry.get("quantization")
    dtype = QUANTISED.get(quant["dtype"]) if quant else RAW.get(entry["dtype"])
    if dtype is None:
        kind = quant["dtype"] if quant else entry["dtype"]
        raise DistillError(f"{manifest}: weight {entry['name']} has unsupported dtype {kind}")
    size = count * np.dtype(dtype).itemsize
    if offset + size > len(data):
        raise DistillError(f"{manifest}: the shards end inside weight {entry['name']} (truncated download?)")
    raw = np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<"), count=count, offset=offset)
    if quant and quant["dtype"] != "float16":
        raw = raw.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
    return raw.astype(np.float32).reshape(entry["shape"]), offset + size
