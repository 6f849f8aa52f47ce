"""Evaluation: the paper's Table 1 protocol driver, the runners that fill holes with each method
(trained models, the classical baselines PatchMatch, Telea and Navier-Stokes), tables and the
report. The metrics themselves live in `pconv_jax.metrics`. The `grid_*` modules score the
infilling of gridded fields (NetCDF) against classical baselines (`pconv evaluate --grid`)."""
