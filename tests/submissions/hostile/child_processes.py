# into: ex01_tracking
def get_or_create_experiment(name, tags=None):
    """Leaves sleepers behind, some escaping its process group and session."""
    import subprocess, sys
    for i in range(12):
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)", "@MARK@-sleeper"],
                         start_new_session=bool(i % 2))
    return "0"
