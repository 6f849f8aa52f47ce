"""How the per-pair results are grouped into table columns: the paper's or LaMa's.

- "paper" (Liu et al. 2018, Table 1): 12 cells = 6 hole-ratio buckets x N/B, from the mask set's
  bucket and border (per-pair rows with int `bucket` and bool `border`); FID-like metrics pool N
  and B per bucket.
- "lama" (Suvorov et al. 2022, saicinpainting/evaluation/evaluator.py): 10 bins of the hole
  ratio measured at the evaluation size, [0, 10%), [10%, 20%), ..., [90%, 100%]; the pooled
  columns are the same bins.

Both end in the column "all" (every pair).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from pconv_jax.errors import UserError
from pconv_jax.masks import lama
from pconv_jax.masks.protocol import CELLS, HOLE_RATIO_BUCKETS

GROUPINGS = ("paper", "lama")


@dataclasses.dataclass(frozen=True)
class Grouping:
    name: str
    columns: tuple[str, ...]  # per-pair table, then "all"
    pooled: tuple[str, ...]  # the pooled table (FID, IS, P-/U-IDS), then "all"
    titles: dict[str, str]  # column -> header, for both tables
    column_of: Callable[[dict], str]  # per-pair row -> one of columns[:-1]
    pooled_of: Callable[[dict], str]  # per-pair row -> one of pooled[:-1]
    tags: dict[str, str]  # pooled column -> a file-name part ("bucket3", "area3")
    note: str


def _bucket_title(column: str) -> str:
    side = column[-1] if column[-1] in "NB" else ""
    lo, hi = HOLE_RATIO_BUCKETS[int(column.rstrip("NB"))]
    return f"({lo},{hi}] {side}".rstrip()


def _paper_cell(row: dict) -> str:
    if row.get("bucket") is None or not 0 <= row["bucket"] < len(HOLE_RATIO_BUCKETS):
        raise ValueError(f"pair row has bucket {row.get('bucket')}, expected 0..5: {row}")
    return f"{row['bucket']}{'B' if row['border'] else 'N'}"


def _paper_bucket(row: dict) -> str:
    return _paper_cell(row)[:-1]


_BUCKETS = tuple(str(b) for b in range(len(HOLE_RATIO_BUCKETS)))
PAPER = Grouping(
    "paper",
    CELLS + ("all",),
    _BUCKETS + ("all",),
    {c: _bucket_title(c) for c in CELLS + _BUCKETS} | {"all": "all"},
    _paper_cell,
    _paper_bucket,
    {b: f"bucket{b}" for b in _BUCKETS},
    "columns: the paper's hole-ratio buckets of the mask set x N (holes >= 50 px at 512 from "
    "the border) / B; pooled table: N and B together",
)

_BINS = tuple(lama.area_bin_title(b) for b in range(lama.NUM_AREA_BINS))


def _lama_bin(row: dict) -> str:
    return _BINS[lama.area_bin(row["hole_ratio"])]


LAMA = Grouping(
    "lama",
    _BINS + ("all",),
    _BINS + ("all",),
    {c: c for c in _BINS} | {"all": "all"},
    _lama_bin,
    _lama_bin,
    {c: f"area{i}" for i, c in enumerate(_BINS)},
    "columns: LaMa's 10 area bins of the hole ratio measured at the evaluation size, "
    "[0,10%), ..., [90,100%]",
)


def get_grouping(name: str) -> Grouping:
    if name not in GROUPINGS:
        raise UserError(f"unknown grouping {name!r}; expected one of {GROUPINGS}")
    return PAPER if name == "paper" else LAMA
