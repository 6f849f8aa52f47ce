"""tfds end to end: a real dataset written to a temporary directory by a real
`GeneratorBasedBuilder` (ArrayRecord files, PNG-encoded `image` feature), read through
`tfds.data_source` by `train_batches`, one shard per process via `tfds.split_for_jax_process`."""

import io

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from pconv_jax.config import DataConfig
from pconv_jax.data import pipeline as data

NAME = "pconv_test_flat_photos"
TRAIN, VALIDATION = 8, 2
LEVELS = 20  # image i of the train split is flat grey LEVELS * (i + 1); validation 200, 220


def _png(level: int) -> io.BytesIO:
    buffer = io.BytesIO()
    Image.fromarray(np.full((48, 64, 3), level, np.uint8)).save(buffer, format="PNG")
    buffer.seek(0)
    return buffer


class PconvTestFlatPhotos(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Flat grey photos whose level names them; encoded PNG bytes (encoding arrays needs TF)."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        features = {"image": tfds.features.Image(shape=(None, None, 3), encoding_format="png")}
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features))

    def _split_generators(self, dl_manager):
        return {
            "train": self._generate_examples([LEVELS * (i + 1) for i in range(TRAIN)]),
            "validation": self._generate_examples([200, 220]),
        }

    def _generate_examples(self, levels):
        for level in levels:
            yield level, {"image": _png(level)}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tfds")
    builder = PconvTestFlatPhotos(data_dir=str(folder), file_format="array_record")
    builder.download_and_prepare()
    assert sorted(p.name for p in (folder / NAME / "1.0.0").glob("*.array_record*")) == [
        f"{NAME}-train.array_record-00000-of-00001",
        f"{NAME}-validation.array_record-00000-of-00001",
    ]
    return str(folder)


def _levels(images: np.ndarray) -> set[int]:
    """The grey level of each flat image in a batch [B,S,S,3] in [0,1]."""
    flat = images.reshape(len(images), -1)
    assert np.all(flat.max(axis=1) - flat.min(axis=1) < 1e-3), "crops of flat photos stay flat"
    return {int(round(v)) for v in flat.mean(axis=1) * 255}


def _seen(cfg, process_index, process_count, steps=6):
    seen = set()
    with data.train_batches(
        cfg, 4, seed=0, process_index=process_index, process_count=process_count
    ) as batches:
        for _ in range(steps):
            batch = next(batches)
            assert batch["image"].shape == (4 // process_count, 32, 32, 3)
            assert batch["mask"].shape == (4 // process_count, 32, 32, 1)
            seen |= _levels(batch["image"])
    return seen


def test_train_batches_read_the_prepared_dataset_per_process(data_dir):
    cfg = DataConfig(
        source="tfds", tfds_name=NAME, tfds_data_dir=data_dir, image_size=32, num_workers=0
    )
    everything = {LEVELS * (i + 1) for i in range(TRAIN)}
    assert _seen(cfg, 0, 1) == everything  # 24 draws cover all 8 of one process

    # Two processes: each reads exactly tfds's own split_for_jax_process shard of the split.
    shards = []
    for index in range(2):
        split = tfds.split_for_jax_process("train", process_index=index, process_count=2)
        source = tfds.data_source(NAME, split=split, data_dir=data_dir)
        expected = {int(source[i]["image"][0, 0, 0]) for i in range(len(source))}
        assert _seen(cfg, index, 2) == expected
        shards.append(expected)
    assert shards[0].isdisjoint(shards[1]) and shards[0] | shards[1] == everything


def test_eval_images_read_the_validation_split(data_dir):
    images = data.eval_images(f"tfds:{NAME}", 32, split="validation", tfds_data_dir=data_dir)
    levels = sorted(int(image[0, 0, 0]) for _, image in images)
    assert levels == [200, 220]


def test_missing_dataset_names_it(tmp_path):
    cfg = DataConfig(source="tfds", tfds_name="no_such_dataset_here", tfds_data_dir=str(tmp_path))
    with pytest.raises(Exception, match="no_such_dataset_here"):
        with data.train_batches(cfg, 4, seed=0) as batches:
            next(batches)
