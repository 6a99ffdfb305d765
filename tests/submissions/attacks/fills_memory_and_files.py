# into: ex01_tracking
def get_or_create_experiment(name, tags=None):
    """Leaves files everywhere it can write (the sandbox's /dev, /dev/shm, /tmp, its home,
    its scratch folder, named like the store template the slot keeps), a System V shared
    memory segment, fills its temporary folder with more than a learner may keep there,
    and then its memory with more than a learner may use."""
    import ctypes, os
    found = []
    places = ["/dev", "/dev/shm", "/tmp", os.environ["HOME"], os.path.dirname(os.getcwd())]
    for folder in places:
        for name in ("@MARK@-litter", "store-template-mlflow-@MARK@.db"):
            try:
                with open(os.path.join(folder, name), "w") as handle:
                    handle.write("@MARK@")
                found.append(f"{folder}/{name}")
            except OSError as error:
                found.append(f"{folder}: {error.strerror}")
    libc = ctypes.CDLL(None, use_errno=True)
    segment = libc.shmget(@SHM_KEY@, 100 * 1024 * 1024, 0o1000 | 0o600)  # IPC_CREAT
    found.append(f"shm segment {segment} errno {ctypes.get_errno()}")
    chunk = b"\1" * (16 * 1024 * 1024)
    try:
        for n in range(8):  # more than the sandbox's /dev/shm holds
            with open(f"/dev/shm/@MARK@-big-{n}", "wb") as handle:
                handle.write(chunk)
    except OSError as error:
        found.append(f"/dev/shm: {error.strerror}")
    try:
        for n in range(110):  # 1.7 GB in files of 16 MB (no one file over the size limit)
            with open(os.path.join(os.environ["TMPDIR"], f"fill-{n}"), "wb") as handle:
                handle.write(chunk)
    except OSError as error:  # a capped scratch folder says no first
        found.append(f"TMPDIR after {n} files: {error.strerror}")
    held = [bytearray(chunk) for _ in range(110)]  # 1.7 GB in memory
    raise RuntimeError(f"all of it written and held ({len(held)}): {found}")
