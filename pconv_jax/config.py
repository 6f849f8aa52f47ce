"""Experiment configuration: frozen dataclasses holding the paper's defaults.

One `Config` tree describes a run. Experiment files in `experiments/configs/NAME.py` define
`get_config() -> Config`; `load(path)` imports such a file, and `override(cfg, ["a.b=v", ...])`
applies command-line overrides, type-checked against the dataclass fields (an unknown key or a
value of the wrong type is a `ValueError` naming the key). Fields with a fixed set of values are
`Literal`s: `load`, `override`, `from_dict` and `validate` reject any other value, naming the key
and the allowed values, before a run writes or loads anything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import io
import json
import pathlib
import sys
import typing
from typing import Any, Literal

from pconv_jax.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    num_layers: int = (
        7  # encoder depth: 7 for 256x256 inputs, 8 for 512x512 (paper appendix); CRAI 3
    )
    partial: bool = True  # False: the paper's "Conv" baseline (same net, ordinary convolutions)
    hole_fill: tuple[float, ...] = IMAGENET_MEAN  # Conv baseline: RGB put in holes; () = keep input
    bn_momentum: float = 0.9  # running-average decay (PyTorch's momentum 0.1)
    # Options that reproduce models trained elsewhere (`pconv convert`, docs/pretrained.md); the
    # defaults are the paper's. The network's pixel space: the model maps its [0,1] RGB input
    # there and its output back. unit = [0,1] | symmetric = 2x-1, i.e. [-1,1] (mmagic) |
    # imagenet = (x - IMAGENET_MEAN) / IMAGENET_STD (naoto0804)
    io_range: Literal["unit", "symmetric", "imagenet"] = "unit"
    # Partial-conv re-weighting: official = sum(1)/(sum(M)+1e-8) (paper, NVIDIA, mmagic) |
    # mask_sum = 1/sum(M) (naoto0804: the same net with kernels C_in*k*k times larger)
    ratio: Literal["official", "mask_sum"] = "official"
    # Layers with a bias: without_bn = the layers without BN, enc1 and dec1 (paper, mmagic) |
    # last_only = dec1 only (naoto0804)
    conv_bias: Literal["without_bn", "last_only"] = "without_bn"
    # Gridded data (CRAI: FREVA-CLINT/climatereconstructionAI, Kadow et al. 2020; docs/grids.md).
    # Channels in and out: CRAI's one channel per --data-types variable, and --out-channels.
    in_channels: int = 3
    out_channels: int = 3
    # enc1's features, doubling per level up to max_width (paper 64 -> 512; CRAI --n-filters n:
    # n -> 8n; CRAI's default: --conv-factor / 2**(encoding_layers-1) -> --conv-factor)
    width: int = 64
    max_width: int = 512
    # Kernel sides of enc1..encL; () = the paper's 7,5,5,3,3.. (CRAI's default: 7,5,..,5,3)
    encoder_kernels: tuple[int, ...] = ()
    # zeros: the border is hole (paper) | global: circular in longitude (W), zeros beyond the
    # poles (H), for features and masks (CRAI's --global-padding)
    padding: Literal["zeros", "global"] = "zeros"
    # multiple: H and W must divide by 2**num_layers (paper; callers pad) | any: strided convs
    # give ceil(H/2), the decoder upsamples nearest to the skip's size (CRAI's nn.Upsample(size))
    input_sizes: Literal["multiple", "any"] = "multiple"
    first_bn: bool = False  # BN on enc1 (paper: none; CRAI: yes unless --disable-first-bn)
    masked_bn: bool = False  # training BN statistics over observed cells only (CRAI --masked-bn)
    leaky_slope: float = 0.2  # decoder LeakyReLU slope (paper 0.2; CRAI: PyTorch's 0.01)
    # Per input channel, physical units; () = none. The model maps x to (x - mean)/std and its
    # output back with the first out_channels of them (CRAI's --normalize-data, nanmean/nanstd)
    channel_mean: tuple[float, ...] = ()
    channel_std: tuple[float, ...] = ()
    # Per output channel, physical units, -inf/inf = none; () = none (CRAI's --min-bounds and
    # --max-bounds: sigmoid between two bounds, exp beyond one, in normalised units)
    output_min: tuple[float, ...] = ()
    output_max: tuple[float, ...] = ()


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Weights of Eq. 7 and the VGG16 used by the perceptual and style terms."""

    valid: float = 1.0
    hole: float = 6.0
    perceptual: float = 0.05
    style: float = 120.0  # applied to L_style_out + L_style_comp
    tv: float = 0.1
    vgg_weights: str = ""  # "" = the ImageNet VGG16 shipped in the package; else .npz or .pth
    # The distance of the valid and hole terms: l1 = |out - gt| (paper, CRAI) | l2 =
    # (out - gt)^2, the squared error that an RMSE score rewards (gridded fields)
    pixel_distance: Literal["l1", "l2"] = "l1"


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Input pipelines (pconv_jax/data/): image source, crops, masks, prefetching."""

    # skimage (photos shipped with scikit-image) | folder | tfds | grids (gridded fields:
    # the data.grid_* fields below; pconv_jax/data/grid_train.py)
    source: Literal["skimage", "folder", "tfds", "grids"] = "skimage"
    dir: str = ""  # source=folder: a folder of images (searched recursively)
    tfds_name: str = ""  # source=tfds: e.g. places365_small, celeb_a_hq/512, imagenet2012
    tfds_data_dir: str = ""  # where tfds finds prepared datasets ("" = tfds default)
    tfds_download: bool = False  # let tfds download and prepare a missing dataset
    train_split: str = "train"  # source=tfds: split to train on (folder/skimage: all images)
    eval_split: str = "validation"  # source=tfds: split eval_images() reads
    image_size: int = 128  # training crop side in pixels (must divide by 2**model.num_layers)
    train_scale_max: float = 1.25  # train: short side resized to image_size * U(1, this), cropped
    task: Literal["inpaint", "superres"] = "inpaint"  # inpaint | superres (paper Sec. 5.2 canvases)
    sr_factors: tuple[int, ...] = (2, 4)  # task=superres: factor drawn per example
    masks: Literal["generate", "folder"] = (
        "generate"  # generate (on-the-fly irregular masks) | folder (augmented raw masks)
    )
    mask_dir: str = ""  # masks=folder: raw training masks, white = hole unless mask_hole_is_white
    mask_threshold: float = 0.6  # masks=folder: fraction of white above which a pixel is white
    mask_hole_is_white: bool = True  # masks=folder: polarity of the raw mask files
    mask_dilation: tuple[int, int] = (9, 49)  # masks=folder: hole dilation disc diameter, px
    hole_ratio_min: float = 0.01  # target hole-to-image ratio range (generate: exact; folder:
    hole_ratio_max: float = 0.6  # up to 4 augmentations are tried, then the closest is used)
    force_test_masks: bool = False  # allow training on a folder that looks like a TEST mask set
    # source=grids: NetCDF/Zarr files of complete fields (e.g. ensemble members), each turned into
    # anomalies against its own per-cell time mean; grid_var names the variable (one channel).
    grid_files: tuple[str, ...] = ()
    grid_var: str = ""
    grid_eval_files: tuple[str, ...] = ()  # held-out files that validation scores (same grid)
    # Coverage per sample: a time step of these files or a `pconv evaluate --coverage` spec ...
    grid_coverage_files: tuple[str, ...] = ()
    grid_coverage_seed: int = 0  # the seed of generated specs (pconv evaluate's --seed)
    # ... or, with probability grid_station_share, one of grid_station_patterns station networks
    # (masks/stations.py) drawn once per run, observed fractions spread over grid_station_fraction
    grid_station_share: float = 0.5
    grid_station_patterns: int = 256
    grid_station_fraction: tuple[float, float] = (0.1, 0.9)
    # probability that a sample's field a is cos(t) a + sin(t) b, b another training field
    # (an unseen field of the same covariance; data/grid_train.py)
    grid_mix_share: float = 0.0
    prefetch: int = 2  # batches prepared ahead of the train step
    num_workers: int = 2  # grain worker processes making batches (0 = in the caller)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    num_steps: int = 1000
    batch_size_per_device: int = 6  # paper: 6 on one V100
    learning_rate: float = 2e-4  # paper stage 1; stage 2 (fine-tuning) uses 5e-5
    # bfloat16: activations in bfloat16; params and optimizer state stay float32
    compute_dtype: Literal["float32", "bfloat16"] = "float32"
    freeze_encoder_bn_stats: bool = False  # stage 2: encoder BN uses, never updates, running stats
    freeze_encoder_bn_params: bool = False  # stage 2: encoder BN scale/bias excluded from updates
    freeze_encoder: bool = False  # few-photo fine-tuning: every encoder parameter and BN statistic
    # stays as loaded (the decoder alone learns)
    # A stage-1 workdir, or an export .npz (`pconv export`, `pconv convert`): params and BN
    # statistics are copied (its model config must equal this run's), the optimizer starts anew.
    init_from: str = ""
    # Learning rate: linear warm-up from 0 over warmup_steps, then constant | cosine (to 0 at
    # num_steps, or after lr_decay_steps) | step (times lr_decay_rate every lr_decay_steps).
    lr_schedule: Literal["constant", "cosine", "step"] = "constant"
    warmup_steps: int = 0
    lr_decay_steps: int = 0  # step: the interval (required); cosine: decay length (0 = to the end)
    lr_decay_rate: float = 0.1  # step: the factor at each interval
    ckpt_every: int = 500  # steps between checkpoints (and one at the end)
    keep_last: int = 3  # most recent checkpoints kept
    keep_every: int = 0  # also keep every checkpoint whose step is a multiple of this (0 = none)
    log_every: int = 50
    sample_every: int = 500  # steps between PNG grids of input / output / composite / truth
    max_seconds: float = 0.0  # stop (with a checkpoint) after this much wall time (0 = no limit)
    # Validation on a fixed held-out set (pconv_jax/train/validation.py); also run at the last step.
    eval_every: int = 0  # steps between validations (0 = none before the last step)
    eval_at_end: bool = False  # validate at the last step even when eval_every is 0
    eval_images: str = ""  # folder | skimage | tfds:NAME (data.eval_split); "" = data's images
    eval_masks: str = ""  # test-mask folder; "" = generated once into workdir/validation_masks
    eval_num_images: int = 24  # the first N images of eval_images
    eval_masks_per_image: int = 1
    eval_best_metric: str = "lpips"  # l1 | psnr | ssim | lpips: picks the best step (best.json)


@dataclasses.dataclass(frozen=True)
class Config:
    name: str = "default"
    model: ModelConfig = ModelConfig()
    loss: LossConfig = LossConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()


def default() -> Config:
    """The embedded default: a CPU-sized demo (128x128 crops of scikit-image's photos)."""
    return Config(
        name="demo",
        model=ModelConfig(num_layers=7),
        data=DataConfig(source="skimage", image_size=128),
        train=TrainConfig(
            num_steps=100,  # ~5 minutes on 2 CPU cores (3 s per step)
            batch_size_per_device=4,
            ckpt_every=50,
            log_every=10,
            sample_every=25,
            eval_at_end=True,  # prints the validation line of the last step (9 photos)
        ),
    )


def load(path: str | None) -> Config:
    """Returns `get_config()` of the Python file at `path`, or `default()` when path is None."""
    if path is None:
        return default()
    file = pathlib.Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    spec = importlib.util.spec_from_file_location(f"_pconv_config_{file.stem}", file)
    if spec is None or spec.loader is None:  # a suffix no import loader knows (not .py)
        raise UserError(f"config file {path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    # Configs may import their sibling files (stage 2 builds on stage 1).
    sys.path.insert(0, str(file.resolve().parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    if not hasattr(module, "get_config"):
        raise UserError(f"config file {path} defines no get_config()")
    cfg = module.get_config()
    if not isinstance(cfg, Config):
        raise UserError(f"get_config() in {path} returned {type(cfg).__name__}, not Config")
    return validate(cfg)


def _check_choice(key: str, value: Any, annotation: Any) -> None:
    choices = typing.get_args(annotation)
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise UserError(f"{key} must be one of {allowed}; got {value!r}")


def validate(cfg: Any, prefix: str = "") -> Any:
    """Checks every `Literal` field of a config tree; returns it unchanged.

    Raises:
      ValueError: naming the first key whose value is not one of its choices, and the choices.
    """
    hints = typing.get_type_hints(type(cfg))
    for field in dataclasses.fields(cfg):
        value, hint = getattr(cfg, field.name), hints[field.name]
        if dataclasses.is_dataclass(value):
            validate(value, f"{prefix}{field.name}.")
        elif typing.get_origin(hint) is Literal:
            _check_choice(prefix + field.name, value, hint)
    return cfg


_TYPE_NAMES = {bool: "a bool (true/false)", int: "an int", float: "a float", str: "a str"}


def override(cfg: Config, assignments: list[str]) -> Config:
    """Applies "section.field=value" assignments; unknown keys and bad values raise UserError.

    tyro parses the values against the fields' annotations (bool, int, float, str, tuples given
    as "a,b,c"). Hand-written here: the key and its type are looked up first, and `Literal`
    choices checked, because tyro names neither the unknown key nor the allowed values (it
    prints a box and exits); a value tyro refuses is named by parsing the assignments one by one.
    """
    parsed = []
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        key = key.strip()
        if not sep:
            raise UserError(f"override {assignment!r} is not of the form key=value")
        hint = _field_type(cfg, key)
        if typing.get_origin(hint) is Literal:
            _check_choice(key, text, hint)
        if typing.get_origin(hint) is tuple:
            tokens = text.strip("()[] ").replace(",", " ").split()
        else:
            tokens = [text.capitalize() if hint is bool else text]
        parsed.append((key, text, hint, [f"--{key}", *tokens]))
    try:
        return _parse_args(cfg, [arg for *_, args in parsed for arg in args])
    except SystemExit:
        for key, text, hint, args in parsed:
            try:
                _parse_args(cfg, args)
            except SystemExit:
                expected = _TYPE_NAMES.get(hint, f"a value of type {hint}")
                raise UserError(f"{key} expects {expected}, got {text!r}") from None
        raise


def _parse_args(cfg: Config, args: list[str]) -> Config:
    """`cfg` with tyro's command-line `args` ("--section.field", values...) applied."""
    import tyro

    with contextlib.redirect_stderr(io.StringIO()):  # tyro's error box: the caller's UserError
        return tyro.cli(
            type(cfg),
            default=cfg,
            args=args,
            use_underscores=True,
            console_outputs=False,
            config=(tyro.conf.FlagConversionOff,),
        )


def _field_type(cfg: Any, key: str) -> Any:
    """The annotation of the field `key` ("section.field") names; UserError if there is none."""
    node: Any = cfg
    hint: Any = type(cfg)
    for depth, name in enumerate(key.split(".")):
        if not dataclasses.is_dataclass(node):
            raise UserError(
                f"unknown config key {key!r} ({key.split('.')[depth - 1]!r} has no fields)"
            )
        hints = typing.get_type_hints(type(node))
        if name not in hints:
            raise UserError(
                f"unknown config key {key!r} (at {name!r}; known: {', '.join(sorted(hints))})"
            )
        node, hint = getattr(node, name), hints[name]
    if dataclasses.is_dataclass(node):
        raise UserError(f"config key {key!r} is a section; set one of its fields")
    return hint


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def to_json(cfg: Config) -> str:
    return json.dumps(to_dict(cfg), indent=2, sort_keys=True)


def from_dict(data: dict) -> Config:
    """Inverse of `to_dict`; unknown keys and values outside a field's choices raise ValueError."""
    return validate(_build(Config, data, ""))


def _build(cls: type, data: dict, prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - fields
    if unknown:
        raise UserError(f"unknown config keys: {sorted(prefix + k for k in unknown)}")
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value, f"{prefix}{name}.")
        elif typing.get_origin(hint) is tuple:
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)
