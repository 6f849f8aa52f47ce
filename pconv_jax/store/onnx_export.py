"""ONNX export of a trained PConvUNet, built node by node from its Flax variables.

Why a direct graph builder and not a JAX-to-ONNX converter: the network is a handful of ONNX
operators (Conv, elementwise mask arithmetic, Clip, nearest Resize, Concat, inference-form BN,
Relu/LeakyRelu), so writing them with `onnx.helper` needs only the small `onnx` package, keeps
every node readable, and makes batch, height and width symbolic by construction. The available
converter (jax2onnx) pins an older orbax-checkpoint than this project, and jax2tf + tf2onnx
would pull in TensorFlow.

The graph (opset 17), computed in NCHW inside, NHWC at the boundary:
  inputs  `image` float32 [N,H,W,3] in [0,1] (hole pixels are ignored, NaN included);
          `mask`  float32 [N,H,W,1], 1 = known, 0 = hole;
  output  `output` float32 [N,H,W,3], the raw network output (not clipped, not composited).
H and W must be multiples of 2**num_layers (the Inpainter pads to buckets that are).

Each partial convolution is written as `layers.PartialConv` computes it (official semantics):
  y = conv(where(m > 0, x*m, 0)) * (C*k*k)/(S + eps) * U + b*U,   U = clip(S, 0, 1),
with S the k x k window sum (same stride and zero padding) of the valid-channel count, done as a
convolution with a ones kernel (model.ratio="mask_sum": y = conv(...) * U / max(S, 1) + b*U with
U = 1[S > 0]). With model.io_range other than "unit" the graph maps the [0,1] input to the
network's pixel space and the output back, as `model.PConvUNet` does. The file's metadata holds
the run's config (JSON), so it is a self-contained inference artefact like the .npz export.
"""

from __future__ import annotations

import json

import numpy as np

from pconv_jax import atomic, config
from pconv_jax.errors import UserError
from pconv_jax.nn.model import IO_AFFINE, encoder_spec
from pconv_jax.store import trained

FORMAT = "pconv_jax.inpainter.onnx"
VERSION = 1
OPSET = 17
BN_EPS = 1e-5  # model._Block's BatchNorm epsilon
PCONV_EPS = 1e-8  # layers.PartialConv.eps


class _Graph:
    """Accumulates nodes and initializers with unique names."""

    def __init__(self):
        from onnx import helper

        self.helper = helper
        self.nodes, self.initializers = [], []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value, hint: str) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], **attrs))
        return out


def _conv(g: _Graph, x: str, kernel_HWIO: np.ndarray, stride: int, bias=None, hint="conv"):
    k = kernel_HWIO.shape[0]
    pad = (k - 1) // 2
    inputs = [x, g.const(np.transpose(kernel_HWIO, (3, 2, 0, 1)), f"{hint}_W")]
    if bias is not None:
        inputs.append(g.const(bias, f"{hint}_B"))
    return g.op(
        "Conv",
        inputs,
        hint,
        kernel_shape=[k, k],
        strides=[stride, stride],
        pads=[pad] * 4,
    )


def _partial_conv(g, xs, masks, channels, params, stride, hint, ratio_mode="official"):
    """One PartialConv over channel segments; returns (y, new_mask), NCHW, mask [N,1,H,W]."""
    zero = g.const(0.0, "zero")
    masked = [
        g.op("Where", [g.op("Greater", [m, zero]), g.op("Mul", [x, m]), zero])
        for x, m in zip(xs, masks)
    ]
    joined = masked[0] if len(masked) == 1 else g.op("Concat", masked, axis=1)
    kernel = np.asarray(params["kernel"], np.float32)
    k = kernel.shape[0]
    raw = _conv(g, joined, kernel, stride, hint=hint)
    count = None
    for m, c in zip(masks, channels):
        part = g.op("Mul", [m, g.const(float(c), "channels")])
        count = part if count is None else g.op("Add", [count, part])
    if count is None:
        raise ValueError("a partial convolution needs at least one mask segment")
    window = _conv(g, count, np.ones((k, k, 1, 1), np.float32), stride, hint=f"{hint}_window")
    if ratio_mode == "mask_sum":
        any_valid = g.op("Greater", [window, zero])
        new_mask = g.op("Cast", [any_valid], f"{hint}_mask", to=1)  # 1 = FLOAT
        divisor = g.op("Where", [any_valid, window, g.const(1.0, "one")])
        y = g.op("Mul", [raw, g.op("Div", [new_mask, divisor])])
    else:
        new_mask = g.op("Clip", [window, g.const(0.0, "lo"), g.const(1.0, "hi")], f"{hint}_mask")
        size = g.const(float(sum(channels) * k * k), "window_size")
        ratio = g.op("Div", [size, g.op("Add", [window, g.const(PCONV_EPS, "eps")])])
        y = g.op("Mul", [raw, g.op("Mul", [ratio, new_mask])])
    if "bias" in params:
        bias = np.asarray(params["bias"], np.float32).reshape(1, -1, 1, 1)
        y = g.op("Add", [y, g.op("Mul", [g.const(bias, f"{hint}_b"), new_mask])])
    return y, new_mask


def _batch_norm(g, y, params, stats, hint):
    """Flax's inference form: (y - mean) * (scale / sqrt(var + eps)) + bias."""
    scale = np.asarray(params["scale"], np.float32)
    mul = scale / np.sqrt(np.asarray(stats["var"], np.float32) + np.float32(BN_EPS))
    shape = (1, -1, 1, 1)
    y = g.op("Sub", [y, g.const(np.asarray(stats["mean"]).reshape(shape), f"{hint}_mean")])
    y = g.op("Mul", [y, g.const(mul.reshape(shape), f"{hint}_mul")])
    return g.op("Add", [y, g.const(np.asarray(params["bias"]).reshape(shape), f"{hint}_bias")])


def _upsample2(g, x):
    scales = g.const([1.0, 1.0, 2.0, 2.0], "scales")
    return g.op(
        "Resize",
        [x, "", scales],
        mode="nearest",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    )


# Long: the whole U-Net as ONNX nodes in nn/model.py's order, readable against it in one place.
def build_onnx(cfg: config.Config, variables: dict, *, step: int | None = None):
    """The ONNX ModelProto of a PConvUNet (see the module docstring for its interface).

    Args:
      cfg: the run's config (its `model` section describes the network).
      variables: {'params', 'batch_stats'} of that model (numpy or JAX arrays).
      step: the checkpoint step, recorded in the metadata.
    """
    import onnx
    from onnx import TensorProto, helper

    num_layers, partial = cfg.model.num_layers, cfg.model.partial
    params, stats = variables["params"], variables.get("batch_stats", {})
    g = _Graph()
    image = g.op("Transpose", ["image"], "image_nchw", perm=[0, 3, 1, 2])
    known = g.op("Transpose", ["mask"], "mask_nchw", perm=[0, 3, 1, 2])
    mask: str | None = known  # None for the Conv baseline (no mask path)
    if not partial:
        fill = tuple(cfg.model.hole_fill)
        if fill:
            colour = g.const(np.reshape(fill, (1, 3, 1, 1)), "hole_fill")
            inside = g.op("Mul", [image, known])
            blended = g.op(
                "Add", [inside, g.op("Mul", [colour, g.op("Sub", [g.const(1.0, "one"), known])])]
            )
            is_known = g.op("Greater", [known, g.const(0.0, "zero")])
            image = g.op(
                "Where", [is_known, blended, g.op("Expand", [colour, g.op("Shape", [image])])]
            )
        mask = None
    affine = IO_AFFINE[cfg.model.io_range]
    if affine is not None:
        mean, std = (np.reshape(np.asarray(v, np.float32), (1, 3, 1, 1)) for v in affine)
        image = g.op(
            "Div", [g.op("Sub", [image, g.const(mean, "io_mean")]), g.const(std, "io_std")]
        )

    def block(name, segments, segment_masks, stride, activation):
        p = params[name]
        if partial:
            channels = [feature_channels[s] for s in segments]
            y, new_mask = _partial_conv(
                g, segments, segment_masks, channels, p["conv"], stride, name, cfg.model.ratio
            )
        else:
            x = segments[0] if len(segments) == 1 else g.op("Concat", segments, axis=1)
            y = _conv(g, x, np.asarray(p["conv"]["kernel"]), stride, p["conv"].get("bias"), name)
            new_mask = None
        if "bn" in p:
            y = _batch_norm(g, y, p["bn"], stats[name]["bn"], name)
        if activation == "relu":
            y = g.op("Relu", [y])
        elif activation == "leaky_relu":
            y = g.op("LeakyRelu", [y], alpha=0.2)
        return y, new_mask

    feature_channels = {image: 3}
    skips = [(image, mask)]
    h, m = image, mask
    for i, (_, features) in enumerate(encoder_spec(num_layers), start=1):
        h, m = block(f"enc{i}", [h], [m], 2, "relu")
        feature_channels[h] = features
        skips.append((h, m))
    for i in range(num_layers, 0, -1):
        skip_h, skip_m = skips[i - 1]
        up_h = _upsample2(g, h)
        feature_channels[up_h] = feature_channels[h]
        up_m = None if m is None else _upsample2(g, m)
        last = i == 1
        h, m = block(f"dec{i}", [up_h, skip_h], [up_m, skip_m], 1, "none" if last else "leaky_relu")
        feature_channels[h] = 3 if last else feature_channels[skip_h]
    if affine is not None:
        h = g.op("Add", [g.op("Mul", [h, g.const(std, "io_std")]), g.const(mean, "io_mean")])
    g.nodes.append(helper.make_node("Transpose", [h], ["output"], perm=[0, 2, 3, 1]))

    def spec(name, channels):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", "H", "W", channels])

    graph = helper.make_graph(
        g.nodes,
        "pconv_unet",
        [spec("image", 3), spec("mask", 1)],
        [spec("output", 3)],
        initializer=g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    meta = {"format": FORMAT, "version": VERSION, "step": step}
    for key, value in (("pconv_meta", json.dumps(meta)), ("pconv_config", config.to_json(cfg))):
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    onnx.checker.check_model(model)
    return model


def export_onnx(workdir, out_path, step: int | None = None):
    """Writes a training run's checkpoint (or a .npz export) as an .onnx file.

    Returns:
      (path written, step exported or None when the source was an .npz without one).
    """
    import onnx

    out_path = trained.export_path(out_path, "onnx")
    source = trained.load(workdir, step)
    step = source.step
    model = build_onnx(source.config, source.variables, step=step)
    with atomic.replacing(out_path) as temporary:
        onnx.save_model(model, str(temporary))
    return out_path, step


def read_metadata(model_proto) -> tuple[config.Config, dict]:
    """(config, meta) stored in an exported ONNX model; ValueError if it is not one."""
    props = {p.key: p.value for p in model_proto.metadata_props}
    if "pconv_meta" not in props or "pconv_config" not in props:
        raise UserError("this ONNX file is not a pconv_jax export (no pconv_meta metadata)")
    meta = json.loads(props["pconv_meta"])
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise UserError(
            f"unsupported ONNX export {meta.get('format')} v{meta.get('version')} "
            f"(this version reads {FORMAT} v{VERSION})"
        )
    return config.from_dict(json.loads(props["pconv_config"])), meta
