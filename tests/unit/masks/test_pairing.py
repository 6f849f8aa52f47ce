"""Image-mask pairing (masks/protocol.py `pair_masks`): deterministic, without replacement,
stratified over the 12 hole-ratio x border cells, several masks per image."""

import collections

import numpy as np
import pytest

from pconv_jax.masks import protocol


def _records(per_cell=5, short_cell=None):
    """Fake MaskRecords: `per_cell` per cell (`short_cell` gets 1), names unique."""
    records = []
    for n, cell in enumerate(protocol.CELLS):
        count = 1 if cell == short_cell else per_cell
        for j in range(count):
            bucket, border = int(cell[:-1]), cell[-1] == "B"
            records.append(
                protocol.MaskRecord(f"/m/{n}_{j}.png", f"{n:02d}_{j}", bucket, border, 0, 0)
            )
    return records


def test_pairing_is_deterministic_without_replacement_and_stratified():
    records = _records()
    pairs = protocol.pair_masks(24, records, seed=3)
    assert [p.index for p in pairs] == list(range(24))
    assert [p.image_index for p in pairs] == list(range(24))
    assert len({p.mask.name for p in pairs}) == 24  # no mask used twice
    assert collections.Counter(p.mask.label for p in pairs) == {c: 2 for c in protocol.CELLS}
    # A pure function of (count, records, seed): same result from a shuffled record list.
    shuffled = [records[i] for i in np.random.default_rng(0).permutation(len(records))]
    assert protocol.pair_masks(24, shuffled, seed=3) == pairs
    other = protocol.pair_masks(24, records, seed=4)
    assert [p.mask.name for p in other] != [p.mask.name for p in pairs]
    # Image order is unrelated to the round-robin cell order.
    assert [p.mask.label for p in pairs[:12]] != list(protocol.CELLS)


def test_pairing_with_several_masks_per_image_and_uneven_cells():
    records = _records(per_cell=5)
    pairs = protocol.pair_masks(20, records, seed=0, masks_per_image=3)
    assert len(pairs) == 60 and len({p.mask.name for p in pairs}) == 60  # all masks, once each
    for image in range(20):
        mine = [p for p in pairs if p.image_index == image]
        assert [p.index for p in mine] == [3 * image + k for k in range(3)]
        assert len({p.mask.name for p in mine}) == 3
    # 21 pairs over 12 cells: 2 for the first 9 cells of the round robin, 1 for the last 3.
    counts = collections.Counter(p.mask.label for p in protocol.pair_masks(7, records, 0, 3))
    assert [counts[c] for c in protocol.CELLS] == [2] * 9 + [1] * 3
    # An exhausted cell is skipped, the others fill in.
    uneven = protocol.pair_masks(30, _records(per_cell=3, short_cell="2B"), seed=1)
    uneven_counts = collections.Counter(p.mask.label for p in uneven)
    assert uneven_counts["2B"] == 1 and sum(uneven_counts.values()) == 30
    with pytest.raises(ValueError, match="need 61 distinct masks; the mask set has 60"):
        protocol.pair_masks(61, records, seed=0)
    with pytest.raises(ValueError, match="20 images x 4 masks per image need 80"):
        protocol.pair_masks(20, records, seed=0, masks_per_image=4)
