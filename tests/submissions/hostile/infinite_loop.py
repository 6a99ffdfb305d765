# into: ex01_tracking
def get_or_create_experiment(name, tags=None):
    while True:
        pass
