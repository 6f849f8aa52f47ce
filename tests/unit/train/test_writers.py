"""Run outputs: metrics.jsonl and TensorBoard events read back with TensorBoard's own reader."""

import json

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from pconv_jax import images
from pconv_jax.train import writers


def test_metric_writer_events_and_jsonl_read_back(tmp_path):
    writer = writers.MetricWriter(tmp_path)
    writer.write_scalars(10, {"train/total": 1.5, "train/hole": np.float32(0.25)})
    writer.write_scalars(20, {"train/total": 0.75, "train/hole": 0.125})
    writer.close()
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lines == [
        {"step": 10, "train/total": 1.5, "train/hole": 0.25},
        {"step": 20, "train/total": 0.75, "train/hole": 0.125},
    ]
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert sorted(events.Tags()["scalars"]) == ["train/hole", "train/total"]
    total = [(e.step, e.value) for e in events.Scalars("train/total")]
    assert total == [(10, 1.5), (20, 0.75)]
    assert [(e.step, e.value) for e in events.Scalars("train/hole")] == [(10, 0.25), (20, 0.125)]


def test_image_grid_layout():
    a = np.zeros((2, 3, 4, 3), np.float32)
    b = np.ones((2, 3, 4, 3), np.float32)
    grid = images.image_grid([a, b], pad=1)
    assert grid.shape == (2 * 4 + 1, 2 * 5 + 1, 3)
    assert (grid[1:4, 1:5] == 0).all() and (grid[1:4, 6:10] == 255).all()
    assert (grid[0] == 255).all()  # padding is white
