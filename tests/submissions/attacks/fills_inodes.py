# into: ex01_tracking
def get_or_create_experiment(name, tags=None):
    """Makes 300,000 empty files in its scratch folder (inodes, not bytes)."""
    import os
    made = 0
    try:
        for n in range(300_000):
            os.close(os.open(f"@MARK@-{n}", os.O_WRONLY | os.O_CREAT, 0o644))
            made += 1
    finally:
        print(f"made {made} files")
    raise RuntimeError(f"made all {made} files")
