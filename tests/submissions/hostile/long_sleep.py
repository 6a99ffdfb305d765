# into: ex01_tracking
def get_or_create_experiment(name, tags=None):
    import time
    time.sleep(3600)
