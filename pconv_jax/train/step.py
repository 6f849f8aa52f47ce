"""The train state and the jitted data-parallel train step (forward, Eq. 7 loss, Adam).

Paper Sec. 4: Adam, lr 2e-4 with BN on everywhere (stage 1); fine-tuning at lr 5e-5 with the
encoder's BN frozen (stage 2). Stage 2 here freezes BOTH halves of the encoder's BN, each
switchable: the running statistics (used, never updated: `freeze_encoder_bn` in the model and
the updated `batch_stats` filtered back to the old encoder values) and scale/bias (labelled
`frozen` for the optimizer, which gives them zero updates and no Adam state). `freeze_encoder`
(few-photo fine-tuning of a converted or trained model) does the same for every encoder variable.
The learning rate follows `learning_rate_schedule` (constant by default, the paper's).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

from pconv_jax.config import Config
from pconv_jax.errors import UserError
from pconv_jax.nn import losses, vgg
from pconv_jax.nn.model import PConvUNet


class TrainState(train_state.TrainState):
    """Flax's train state (step: int32 scalar of completed steps, params, opt_state, and the
    static apply_fn and tx) plus the BN running statistics. A checkpoint holds `model_vars()` and
    `train_vars()`, the same trees as before this class built on Flax's (store/checkpoint.py)."""

    batch_stats: Any = None

    def model_vars(self) -> dict:
        return {"params": self.params, "batch_stats": self.batch_stats}

    def train_vars(self) -> dict:
        return {"opt_state": self.opt_state, "step": self.step}


def compute_dtype(cfg: Config):
    """The model's compute dtype (None = float32); `config.validate` checked the choice."""
    return jnp.bfloat16 if cfg.train.compute_dtype == "bfloat16" else None


def _is_encoder_bn(path) -> bool:
    names = [getattr(k, "key", None) for k in path]
    return len(names) >= 2 and str(names[0]).startswith("enc") and names[1] == "bn"


def _is_encoder(path) -> bool:
    return str(getattr(path[0], "key", "")).startswith("enc")


def param_labels(params, freeze_encoder_bn_params: bool, freeze_encoder: bool = False):
    """'frozen' for the encoder's BN scale/bias when freezing them (every encoder parameter with
    `freeze_encoder`), else 'trainable'."""

    def label(path, _):
        frozen = (freeze_encoder and _is_encoder(path)) or (
            freeze_encoder_bn_params and _is_encoder_bn(path)
        )
        return "frozen" if frozen else "trainable"

    return jax.tree_util.tree_map_with_path(label, params)


def freezes_encoder_stats(cfg: Config) -> bool:
    return cfg.train.freeze_encoder_bn_stats or cfg.train.freeze_encoder


def learning_rate_schedule(cfg: Config):
    """The learning rate for update number `count` (0-based): a float when it is constant and
    without warm-up (the optimizer state then has no schedule counter), else an optax schedule.

    Raises UserError for an inconsistent schedule (step decay without an interval, ...).
    """
    t, lr = cfg.train, cfg.train.learning_rate
    if t.warmup_steps < 0 or t.lr_decay_steps < 0:
        raise UserError("train.warmup_steps and train.lr_decay_steps must be >= 0")
    if t.lr_schedule == "constant" and not t.warmup_steps:
        return lr
    if t.lr_schedule == "step":
        if t.lr_decay_steps <= 0:
            raise UserError("train.lr_schedule=step needs train.lr_decay_steps > 0 (the interval)")
        after = optax.exponential_decay(lr, t.lr_decay_steps, t.lr_decay_rate, staircase=True)
    elif t.lr_schedule == "cosine":
        length = t.lr_decay_steps or t.num_steps - t.warmup_steps
        after = optax.cosine_decay_schedule(lr, max(1, length))
    else:
        after = optax.constant_schedule(lr)
    if not t.warmup_steps:
        return after
    warmup = optax.linear_schedule(0.0, lr, t.warmup_steps)
    return optax.join_schedules([warmup, after], [t.warmup_steps])


def learning_rate_at(cfg: Config, count: int) -> float:
    """The learning rate of update number `count` (0-based), as logged."""
    schedule = learning_rate_schedule(cfg)
    return float(schedule(count)) if callable(schedule) else float(schedule)


def make_optimizer(cfg: Config, params) -> optax.GradientTransformation:
    labels = param_labels(params, cfg.train.freeze_encoder_bn_params, cfg.train.freeze_encoder)
    return optax.multi_transform(
        {"trainable": optax.adam(learning_rate_schedule(cfg)), "frozen": optax.set_to_zero()},
        labels,
    )


def keep_encoder_stats(old_stats, new_stats):
    """New batch statistics for the decoder, the old ones for the encoder."""
    return {k: (old_stats[k] if k.startswith("enc") else v) for k, v in new_stats.items()}


def init_variables(model: PConvUNet, image_size: int, seed: int) -> Mapping[str, Any]:
    # Variable shapes depend on the channels only, not on the side (gridded runs use any grid).
    image = jnp.zeros((1, image_size, image_size, model.in_channels), jnp.float32)
    return model.init(jax.random.key(seed), image, jnp.ones((1, image_size, image_size, 1)))


def create_train_state(model, tx, image_size: int, seed: int) -> TrainState:
    variables = init_variables(model, image_size, seed)
    return TrainState(
        step=jnp.zeros((), jnp.int32),  # an int32 array, as checkpoints hold it
        apply_fn=model.apply,
        params=variables["params"],
        tx=tx,
        opt_state=tx.init(variables["params"]),
        batch_stats=variables["batch_stats"],
    )


def network_input(batch):
    """What the network is fed: `batch['input']` (SR canvases) or the image with holes zeroed.

    The network never sees the ground truth in the holes (it matters for the Conv baseline with
    hole_fill=(), which keeps the input's hole pixels). [N, H, W, 3] in [0, 1].
    """
    return batch["input"] if "input" in batch else batch["image"] * batch["mask"]


def loss_and_updates(params, batch_stats, batch, vgg_params, *, model, cfg: Config):
    """Returns (L_total, (terms, new_batch_stats)) for one global batch."""
    inputs = network_input(batch)
    output, updates = model.apply(
        {"params": params, "batch_stats": batch_stats},
        inputs,
        batch["mask"],
        train=True,
        freeze_encoder_bn=freezes_encoder_stats(cfg),
        mutable=["batch_stats"],
    )
    features_fn = None  # no VGG terms (gridded data): no VGG16 in the step
    if vgg_params is not None:
        features_fn = vgg.make_vgg_features_fn(vgg_params, compute_dtype(cfg))
    total, terms = losses.inpainting_loss(
        output, batch["image"], batch["mask"], features_fn, cfg.loss
    )
    new_stats = updates["batch_stats"]
    if freezes_encoder_stats(cfg):
        new_stats = keep_encoder_stats(batch_stats, new_stats)
    return total, (terms, new_stats)


def train_step(state: TrainState, batch, vgg_params, *, model, cfg: Config):
    """One step of the state's optimizer (`state.tx`) on the global batch. A non-finite loss
    leaves the state unchanged and sets metrics['finite'] to 0, so a checkpoint never holds the
    result of a bad step."""
    grad_fn = jax.value_and_grad(loss_and_updates, has_aux=True)
    (total, (terms, new_stats)), grads = grad_fn(
        state.params,
        state.batch_stats,
        batch,
        vgg_params,
        model=model,
        cfg=cfg,
    )
    new_state = state.apply_gradients(grads=grads, batch_stats=new_stats)
    finite = jnp.isfinite(total)
    new_state = jax.tree_util.tree_map(lambda n, o: jnp.where(finite, n, o), new_state, state)
    metrics = {**terms, "grad_norm": optax.tree.norm(grads), "finite": finite.astype(jnp.float32)}
    return new_state, metrics


def predict(variables, inputs, mask, *, model):
    """Inference output (running BN statistics), [N,H,W,3] float32."""
    return model.apply(variables, inputs, mask).astype(jnp.float32)
