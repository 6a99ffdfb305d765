"""`pytest grader` loads the kit's plugin from here (hooks and fixtures live in plugin.py)."""
from grader.plugin import *  # noqa: F401,F403
