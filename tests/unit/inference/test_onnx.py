"""ONNX export: onnxruntime equals JAX on real photos, holes are ignored, Inpainter runs .onnx."""

import jax
import jax.numpy as jnp
import numpy as np
import onnxruntime
import pytest
from PIL import Image

from pconv_jax import cli
from pconv_jax.inference.inpainter import Inpainter
from pconv_jax.inference.onnx_runtime import OnnxForward
from pconv_jax.store import trained
from pconv_jax.store.onnx_export import export_onnx

import tolerances
from conftest import shared_path


@pytest.fixture(scope="module")
def onnx_path(run_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    assert cli.main(["export", "--format", "onnx", "--checkpoint", str(run_dir), str(path)]) == 0
    return path


def _photos_and_masks(size_hw, indices=(3, 19)):
    """Two Kodak photos (area-downscaled, cropped) with two NVIDIA test masks, float32 batch."""
    kodak, nvidia = shared_path("data", "kodak"), shared_path("data", "nvidia_test_masks")
    height, width = size_hw
    images, masks = [], []
    for i in indices:
        photo = Image.open(kodak / f"{i:02d}.png").convert("RGB")
        photo = photo.resize((width, round(photo.height * width / photo.width)), Image.BOX)
        images.append(np.asarray(photo, np.float32)[:height] / 255.0)
        hole = Image.open(nvidia / f"{i * 7:05d}.png").convert("L").resize((width, height))
        masks.append((np.asarray(hole) < 128).astype(np.float32)[..., None])  # white = hole
    return np.stack(images), np.stack(masks)


@pytest.mark.parametrize("size_hw", [(64, 96), (128, 192)])
def test_onnxruntime_matches_jax_on_photos(onnx_path, run_dir, size_hw):
    image, mask = _photos_and_masks(size_hw)
    assert 0.05 < 1 - mask.mean() < 0.7  # real holes, not an empty or full mask
    loaded = trained.load_run(run_dir)
    model, variables = loaded.model, loaded.variables
    expected = np.asarray(jax.jit(model.apply)(variables, image, mask))  # independent: Flax
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (got,) = session.run(["output"], {"image": image, "mask": mask})
    assert got.shape == expected.shape == (2, *size_hw, 3) and got.dtype == np.float32
    # onnxruntime vs XLA, two programs: tolerances.network_atol over the U-Net's reductions at
    # the output's largest magnitude (was 1e-4, from the margin seen here).
    atol = tolerances.network_atol(tolerances.unet_reductions(4), float(np.abs(expected).max()))
    assert np.abs(got - expected).max() <= atol
    assert np.abs(expected).max() > 0.5  # the comparison is not between near-zero outputs


def test_onnx_hole_pixels_change_nothing(onnx_path):
    image, mask = _photos_and_masks((64, 96))
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (base,) = session.run(["output"], {"image": image, "mask": mask})
    noisy = np.where(mask > 0, image, np.random.default_rng(0).uniform(-5, 5, image.shape))
    noisy = noisy.astype(np.float32)
    noisy[0, mask[0, ..., 0] == 0] = np.nan  # NaN in a hole must not leak either
    (other,) = session.run(["output"], {"image": noisy, "mask": mask})
    np.testing.assert_array_equal(other, base)
    # The mask itself matters: the check above is not passing because the input is ignored.
    (moved,) = session.run(["output"], {"image": image, "mask": np.roll(mask, 9, axis=2)})
    assert np.abs(moved - base).max() > 1e-3


def test_inpainter_runs_onnx_with_exact_known_pixels(onnx_path, run_dir):
    image, mask = _photos_and_masks((45, 67))  # odd size: padded to a bucket like the JAX path
    image_u8 = np.round(image * 255).astype(np.uint8)
    known = mask[..., 0] > 0
    onnx_inpainter = Inpainter.load(onnx_path)
    assert isinstance(onnx_inpainter.forward, OnnxForward)
    out = onnx_inpainter(list(image_u8), list(known))
    jax_out = Inpainter.load(run_dir)(list(image_u8), list(known))
    for o, j, img, k in zip(out, jax_out, image_u8, known):
        assert o.shape == img.shape and o.dtype == np.uint8
        np.testing.assert_array_equal(o[k], img[k])
        assert np.abs(o.astype(int) - j.astype(int)).max() <= 1  # rounding of ~1e-5 differences
    assert onnx_inpainter.num_compilations == 1  # both photos share one bucket and one pass


def test_onnx_export_errors(run_dir, tmp_path, capsys):
    with pytest.raises(ValueError, match=r"\.onnx file"):
        export_onnx(run_dir, tmp_path / "model.npz")
    for args in (
        ["--format", "onnx", "--grid-size", "72by72"],
        ["--format", "npz", "--grid-size", "72x72"],
    ):
        out = tmp_path / ("g.npz" if "npz" in args else "g.onnx")
        assert cli.main(["export", *args, "--checkpoint", str(run_dir), str(out)]) == 2
        assert "--grid-size takes HxW" in capsys.readouterr().err and not out.exists()
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="cannot read"):
        Inpainter.load(tmp_path / "bad.onnx")


@pytest.mark.parametrize(
    ("options", "undone"),
    [  # `undone` switches one option back: same variables, another network
        (dict(partial=False), dict(partial=True)),  # the Conv baseline, ImageNet-mean holes
        (
            dict(io_range="imagenet", ratio="mask_sum", conv_bias="last_only"),
            dict(ratio="official"),
        ),
        (dict(io_range="symmetric"), dict(io_range="unit")),  # mmagic's pixel space
    ],
    ids=["conv-baseline", "naoto0804", "mmagic"],
)
def test_model_options_export_too(options, undone):
    """Each ModelConfig option reaches the graph: the export traces the Flax model itself."""

    from pconv_jax import config
    from pconv_jax.nn.model import build_model
    from pconv_jax.store.onnx_export import build_onnx

    cfg = config.Config(model=config.ModelConfig(num_layers=4, **options))
    model = build_model(cfg.model)
    rng = np.random.default_rng(0)
    variables = _random_variables(model, 3, rng)
    image, mask = _photos_and_masks((64, 96))
    expected = np.asarray(jax.jit(model.apply)(variables, image, mask))
    session = onnxruntime.InferenceSession(
        build_onnx(cfg, variables).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    (got,) = session.run(["output"], {"image": image, "mask": mask})
    # onnxruntime vs XLA: tolerances.network_atol (was 1e-4 x max(1, max |output|)).
    atol = tolerances.network_atol(tolerances.unet_reductions(4), float(np.abs(expected).max()))
    assert np.abs(got - expected).max() <= atol
    # The option changes the output: the graph is not that of the model without it.
    other = build_model(config.ModelConfig(num_layers=4, **{**options, **undone}))
    assert np.abs(np.asarray(jax.jit(other.apply)(variables, image, mask)) - got).max() > atol


GRID = dict(  # a CRAI-style gridded model: one variable, global padding, masked BN, bounds
    num_layers=3,
    in_channels=1,
    out_channels=1,
    width=16,
    max_width=64,
    encoder_kernels=(7, 5, 3),
    padding="global",
    first_bn=True,
    masked_bn=True,
    leaky_slope=0.01,
    channel_mean=(280.0,),
    channel_std=(12.0,),
    output_min=(180.0,),
    output_max=(330.0,),
)


@pytest.mark.parametrize(
    ("input_sizes", "size_hw", "grids"),
    [("multiple", None, [(72, 72), (48, 96)]), ("any", (73, 75), [(73, 75)])],
)
def test_gridded_model_exports(input_sizes, size_hw, grids):
    """The gridded options reach the graph; sizes symbolic (multiples of 2**L) or one grid."""

    from pconv_jax import config
    from pconv_jax.nn.model import build_model
    from pconv_jax.store.onnx_export import build_onnx

    cfg = config.Config(model=config.ModelConfig(**GRID, input_sizes=input_sizes))
    model = build_model(cfg.model)
    rng = np.random.default_rng(0)
    variables = _random_variables(model, 1, rng)
    proto = build_onnx(cfg, variables, size_hw=size_hw)
    session = onnxruntime.InferenceSession(
        proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    # The reductions of this net (GRID): enc 7x7x1, 5x5x16, 3x3x32; dec3 3x3x(64+32),
    # dec2 3x3x(32+16), dec1 3x3x(16+1); its normalised output lies within the bounds
    # ((330 - 280) / 12 at most), and is then scaled by std 12 and shifted by 280 (one rounding
    # of at most eps/2 of the physical value, in each program).
    reductions = [49, 25 * 16, 9 * 32, 9 * 96, 9 * 48, 9 * 17]
    for height, width in grids:
        field = rng.normal(280, 12, (2, height, width, 1)).astype(np.float32)
        mask = (rng.uniform(0, 1, (2, height, width, 1)) > 0.5).astype(np.float32)
        expected = np.asarray(jax.jit(model.apply)(variables, field, mask))
        (got,) = session.run(["output"], {"image": field, "mask": mask})
        assert got.shape == expected.shape == (2, height, width, 1)
        physical = float(np.abs(expected).max())
        atol = tolerances.network_atol(reductions, 50 / 12) * 12 + tolerances.EPS32 * physical
        assert np.abs(got - expected).max() <= atol
        assert 180 < expected.min() and expected.max() < 330  # the bounds are in the graph
    if input_sizes == "any":  # symbolic sides cannot be traced: the size must be given
        with pytest.raises(ValueError, match="exports for one grid size"):
            build_onnx(cfg, variables)


def _random_variables(model, channels: int, rng: np.random.Generator) -> dict:
    """Random variables for `model` drawn from `rng`: BN variances in [0.5, 1.5], everything
    else small normal values, so that every layer and statistic shows in the output."""
    shapes = jax.eval_shape(
        lambda: model.init(
            jax.random.key(0), jnp.zeros((1, 16, 16, channels)), jnp.ones((1, 16, 16, 1))
        )
    )

    def draw(path, x):
        if path[-1].key == "var":
            return rng.uniform(0.5, 1.5, x.shape).astype(np.float32)
        return rng.normal(0, 0.2, x.shape).astype(np.float32)

    return jax.tree_util.tree_map_with_path(draw, shapes)
