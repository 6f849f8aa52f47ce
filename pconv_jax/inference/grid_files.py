"""The file path of the `Infiller`: read a slice of time steps, infill it, write it, repeat.

Bad input is refused before anything is written where it can be seen up front (a missing
variable, a grid or channel count the model cannot take, a mask file of another shape, a file
that is not NetCDF/Zarr); an all-NaN variable shows only once every step has been read, so it is
refused then and the partial output (under its temporary name) is deleted. The output appears
under its own name only when complete.
"""

from __future__ import annotations

import dataclasses
import datetime
import pathlib

import numpy as np
from tqdm import tqdm

from pconv_jax.config import ModelConfig
from pconv_jax.data import grid_masks, grids
from pconv_jax.errors import UserError
from pconv_jax.inference.grid_output import GridWriter, temporary_path
from pconv_jax.nn.model import layer_spec


@dataclasses.dataclass(frozen=True)
class InfillReport:
    """What `Infiller.infill_file` did.

    Attributes:
      output: the file written.
      names: the infilled variables.
      num_steps: time steps infilled.
      infilled_cells: cells filled by the network, per variable.
      empty_steps: per variable, the time indices that had no observed cell.
    """

    output: pathlib.Path
    names: tuple[str, ...]
    num_steps: int
    infilled_cells: dict[str, int]
    empty_steps: dict[str, list[int]]


def check_grid(model: ModelConfig, channels: int, grid_shape: tuple[int, int]) -> None:
    """UserError unless a model built from `model` takes `channels` variables on `grid_shape`."""
    if channels != model.in_channels:
        raise UserError(
            f"the model takes {model.in_channels} input channel(s) (variables); got {channels}"
        )
    if model.out_channels > model.in_channels:
        raise UserError(
            f"the model outputs {model.out_channels} channels from {model.in_channels}: infilling "
            "needs each output channel to fill an input variable"
        )
    multiple = 2**model.num_layers
    height, width = grid_shape
    if model.input_sizes == "multiple" and (height % multiple or width % multiple):
        raise UserError(
            f"the {height}x{width} grid does not divide by 2**num_layers = {multiple}: this model "
            f"(num_layers={model.num_layers}, input_sizes='multiple') cannot take it"
        )
    if model.padding == "global":
        # longitude wraps around: each encoder layer's (k-1)/2 wrapped columns must exist at its
        # level, whose width halves (rounded up) per level
        kernels = [k for k, _ in layer_spec(model.num_layers, kernels=model.encoder_kernels)]
        for level, kernel in enumerate(kernels):
            side = -(-width // 2**level)
            if (kernel - 1) // 2 > side:
                raise UserError(
                    f"the {height}x{width} grid is too narrow for the model's depth: level "
                    f"{level + 1} is {side} cells wide, its {kernel}x{kernel} kernel wraps "
                    f"{(kernel - 1) // 2} (global padding)"
                )


def check_output(source: pathlib.Path, output: pathlib.Path, overwrite: bool) -> None:
    """UserError for an output that would replace a file the user has, unless `overwrite`."""
    if output.suffix.lower() not in (".nc", ".nc4"):
        raise UserError(f"the output is a NetCDF file (.nc); got {output}")
    if not output.parent.is_dir():
        raise UserError(f"no folder {output.parent} for the output {output.name}")
    if overwrite:
        return
    if output.resolve() == source.resolve():
        raise UserError(f"-o {output} is the input file; give another name or --overwrite")
    if output.exists():
        raise UserError(f"{output} exists; give another name or --overwrite")


def infill_file(
    infiller,
    source: pathlib.Path,
    output: pathlib.Path,
    names: tuple[str, ...],
    *,
    mask_file,
    batch_size: int,
    write_mask: bool,
    overwrite: bool,
    progress: bool,
    history: str,
) -> InfillReport:
    """Infills every time step of `names` in `source` into the NetCDF file `output`.

    Args:
      infiller: the `inference.infiller.Infiller` to run (this module cannot import it: the
        Infiller's `infill_file` calls this function).
      source: NetCDF or Zarr input.
      output: the NetCDF file to write (refused if it exists, or is `source`, unless `overwrite`).
      names: the variables, one channel each, in the model's channel order.
      mask_file: optional mask file (`data.grid_masks`); default: observed where not NaN/fill.
      batch_size: time steps per forward pass (rounded up to a multiple of the device count).
      write_mask: also write `<name>_mask` (1 = observed, 0 = infilled).
      overwrite: allow replacing an existing `output` (even the input: the output is written
        under a temporary name first).
      progress: show a tqdm bar over the time steps.
      history: what the `history` line says after its timestamp.
    """
    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")
    check_output(source, output, overwrite)
    dataset = grids.open_grid(source)
    masks = None
    try:
        layout = grids.select_grid(dataset, names, str(source))
        check_grid(infiller.config, layout.num_channels, layout.grid_shape)
        # the variables the model fills: the first out_channels
        filled = dataclasses.replace(layout, names=layout.names[: infiller.config.out_channels])
        if mask_file is not None:
            masks = grid_masks.open_mask_file(mask_file, layout)
        # one compiled shape: every slice is padded to batch_size, a multiple of the devices
        unit = infiller.forward.batch_unit
        batch_size = -(-min(batch_size, layout.num_samples) // unit) * unit
        stamp = datetime.datetime.now(datetime.UTC).strftime("%a %b %d %H:%M:%S %Y")
        temporary = temporary_path(output)
        writer = None
        try:
            writer = GridWriter(dataset, filled, temporary, f"{stamp}: {history}", write_mask)
            report = _run(infiller, dataset, layout, masks, writer, batch_size, progress, output)
        except BaseException:
            if writer is not None:
                writer.abandon()
            temporary.unlink(missing_ok=True)
            raise
    finally:
        dataset.close()
        if masks is not None:
            masks.close()
    temporary.replace(output)
    return report


def _run(infiller, dataset, layout, masks, writer, batch_size, progress, output) -> InfillReport:
    out = infiller.config.out_channels
    observed_total = np.zeros(layout.num_channels, np.int64)
    infilled = np.zeros(out, np.int64)
    empty: list[list[int]] = [[] for _ in range(out)]
    with tqdm(total=layout.num_samples, unit="step", disable=not progress) as bar:
        for start in range(0, layout.num_samples, batch_size):
            stop = min(start + batch_size, layout.num_samples)
            values = grids.read_values(dataset, layout, start, stop)
            observed = np.isfinite(values)
            observed_total += observed.sum(axis=(0, 1, 2))
            if masks is not None:
                observed &= masks.steps(start, stop) > 0.5
            result = infiller(values, observed.astype(np.float32), batch_size=batch_size)
            writer.write(start, result, observed[..., :out])
            infilled += (~observed[..., :out]).sum(axis=(0, 1, 2))
            for c in range(out):
                steps = np.flatnonzero(~observed[..., c].any(axis=(1, 2)))
                empty[c].extend(int(start + s) for s in steps)
            bar.update(stop - start)
    if not observed_total.all():
        names = [n for n, count in zip(layout.names, observed_total) if count == 0]
        raise UserError(f"variable {', '.join(names)} holds no observed value (all NaN or fill)")
    names = layout.names[:out]
    writer.finish(
        {
            name: {"steps_without_observation": np.asarray(steps, np.int32)}
            for name, steps in zip(names, empty)
            if steps
        }
    )
    return InfillReport(
        output=output,
        names=names,
        num_steps=layout.num_samples,
        infilled_cells={name: int(n) for name, n in zip(names, infilled)},
        empty_steps={name: steps for name, steps in zip(names, empty)},
    )
