"""`pytest grader` loads the kit's plugin from here (hooks and fixtures live in plugin.py)."""
try:
    from grader.plugin import *  # noqa: F401,F403
except ModuleNotFoundError as error:  # a Python without the kit's packages: one plain line, not a traceback
    import pytest

    from grader import install_advice

    _ADVICE = install_advice(error)

    def pytest_configure(config):
        raise pytest.UsageError(_ADVICE)
