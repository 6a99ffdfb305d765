# into: ex01_tracking
def get_or_create_experiment(name, tags=None):
    """Raises with terminal escape sequences (clear the screen, move the cursor, set the
    window title), a bidirectional override, and 4 MB of text."""
    raise RuntimeError("\x1b[2J\x1b[H\x1b]0;@MARK@-title\x07\u202e@MARK@-reversed\x1b[31m" + "@MARK@-loud " * 350_000)
