"""Multi-process launch settings (parallel/distributed.py) come from flags, then PCONV_*
variables. The multi-process runs themselves: tests/e2e/test_multiprocess.py."""

import pytest

from pconv_jax.parallel import distributed


def test_launch_settings_from_flags_then_environment():
    env = {"PCONV_COORDINATOR": "10.0.0.1:1234", "PCONV_NUM_PROCESSES": "4"}
    env["PCONV_PROCESS_ID"] = "3"
    assert distributed.resolve_launch(environ=env) == distributed.Launch("10.0.0.1:1234", 4, 3)
    assert distributed.resolve_launch(process_id=1, environ=env).process_id == 1
    assert distributed.resolve_launch(environ={}) is None
    with pytest.raises(ValueError, match=r"also needs --process-id \(or PCONV_PROCESS_ID\)"):
        distributed.resolve_launch("h:1", 2, environ={})
    with pytest.raises(ValueError, match="HOST:PORT"):
        distributed.resolve_launch("host", 2, 0, environ={})
    with pytest.raises(ValueError, match="0 <= --process-id < 2"):
        distributed.resolve_launch("h:1", 2, 2, environ={})
