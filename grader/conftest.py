"""`pytest grader` registers the kit's plugin from here: the module hooks below make a
GradingPlugin (grader/plugin.py) for the session, whose hooks and fixtures do the rest."""
try:
    from grader.plugin import pytest_addoption, pytest_configure, pytest_unconfigure  # noqa: F401
except ModuleNotFoundError as error:  # a Python without the kit's packages: one plain line, not a traceback
    import pytest

    from grader import install_advice

    _ADVICE = install_advice(error)

    def pytest_configure(config):
        raise pytest.UsageError(_ADVICE)
