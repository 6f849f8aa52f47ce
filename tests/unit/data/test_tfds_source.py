"""tfds end to end: a real dataset written to a temporary directory by a real
`GeneratorBasedBuilder` (ArrayRecord files, PNG-encoded `image` feature), read through
`tfds.data_source` by `train_batches` (each process making its rows of the same global batch) and
by the sharded evaluation source (`tfds.split_for_jax_process`)."""

import io

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from pconv_jax.config import DataConfig
from pconv_jax.data import eval_set, sources
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


def _batches(cfg, process_index, process_count, steps=3):
    with data.train_batches(
        cfg, 4, seed=0, process_index=process_index, process_count=process_count
    ) as batches:
        return [next(batches) for _ in range(steps)]


def test_train_batches_read_the_prepared_dataset_per_process(data_dir):
    cfg = DataConfig(
        source="tfds", tfds_name=NAME, tfds_data_dir=data_dir, image_size=32, num_workers=0
    )
    everything = {LEVELS * (i + 1) for i in range(TRAIN)}
    assert _seen(cfg, 0, 1) == everything  # 24 draws cover all 8 of one process
    assert _seen(cfg, 1, 2) <= everything

    # Two processes make the two halves of the one-process global batch, bit for bit: the batch
    # of step k does not depend on the process count (README: Training on several hosts).
    whole = _batches(cfg, 0, 1)
    halves = [_batches(cfg, index, 2) for index in range(2)]
    for step, batch in enumerate(whole):
        for key in ("image", "mask"):
            stacked = np.concatenate([halves[0][step][key], halves[1][step][key]])
            assert stacked.tobytes() == batch[key].tobytes()


def test_sharded_source_is_tfds_own_process_split(data_dir):
    """Evaluation shards (open_source with a process index) are tfds's split_for_jax_process."""
    cfg = DataConfig(source="tfds", tfds_name=NAME, tfds_data_dir=data_dir, image_size=32)
    shards = []
    for index in range(2):
        split = tfds.split_for_jax_process("train", process_index=index, process_count=2)
        expected = tfds.data_source(NAME, split=split, data_dir=data_dir)
        ours = sources.open_source(cfg, "train", index, 2)
        levels = [int(ours.load(i)[0, 0, 0]) for i in range(len(ours))]
        assert levels == [int(expected[i]["image"][0, 0, 0]) for i in range(len(expected))]
        shards.append(set(levels))
    everything = {LEVELS * (i + 1) for i in range(TRAIN)}
    assert shards[0].isdisjoint(shards[1]) and shards[0] | shards[1] == everything


def test_eval_images_read_the_validation_split(data_dir):
    images = eval_set.eval_images(f"tfds:{NAME}", 32, split="validation", tfds_data_dir=data_dir)
    levels = sorted(int(image[0, 0, 0]) for _, image in images)
    assert levels == [200, 220]


def test_missing_dataset_names_it(tmp_path):
    cfg = DataConfig(source="tfds", tfds_name="no_such_dataset_here", tfds_data_dir=str(tmp_path))
    with pytest.raises(Exception, match="no_such_dataset_here"):
        with data.train_batches(cfg, 4, seed=0) as batches:
            next(batches)
