# into: ex01_tracking
class Trap:
    """Whoever unpickles this creates the trap file."""
    def __reduce__(self):
        return (open, ("@TRAP@", "w"))


def get_or_create_experiment(name, tags=None):
    return Trap()
