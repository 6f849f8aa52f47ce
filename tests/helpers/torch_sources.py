"""Random PConv checkpoints saved as mmagic and naoto0804 saved theirs (tests/torch_ref holds
each project's model code, re-implemented from reading it); used by the converter's tests."""

import torch

from torch_ref import mmagic_2020, naoto0804


def write_source_file(source: str, path, num_layers: int, **kwargs):
    """Writes a random checkpoint of `source` as its project saved it; returns the torch model."""
    if source == "mmagic":
        model, checkpoint = mmagic_2020.make_checkpoint(num_layers, **kwargs)
        torch.save(checkpoint, path, _use_new_zipfile_serialization=False)
        return model
    model, checkpoint, cuda_tensors = naoto0804.make_checkpoint(num_layers, **kwargs)
    with naoto0804.cuda_tagged(cuda_tensors):
        torch.save(checkpoint, path, _use_new_zipfile_serialization=False)
    return model
