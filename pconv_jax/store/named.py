"""Models that ship inside the package, loaded by name: `Infiller.load("ccsm-t42")`,
`pconv infill IN.nc --model ccsm-t42 -o OUT.nc`, with no download.

Each is a `pconv export` .npz in store/pretrained/ with its model card beside it (NAME.md: data,
masks, steps, time, machine and scores). A path that exists is always taken as a path, so a
local file named like a shipped model is never shadowed.
"""

from __future__ import annotations

import os
import pathlib

PRETRAINED_DIR = pathlib.Path(__file__).parent / "pretrained"
# name -> file in PRETRAINED_DIR
NAMED_MODELS = {
    # CCSM 2 m temperature anomalies (K) on the T42 grid, infilled under observational coverage
    # (experiments/configs/ccsm_trefht.py; card: store/pretrained/ccsm-t42.md)
    "ccsm-t42": "ccsm-t42.npz",
}


def resolve(path_or_name: str | os.PathLike) -> pathlib.Path:
    """The file of a shipped model's name; any other argument as a path, unchanged."""
    path = pathlib.Path(path_or_name)
    name = str(path_or_name)
    if name in NAMED_MODELS and not path.exists():
        return PRETRAINED_DIR / NAMED_MODELS[name]
    return path
