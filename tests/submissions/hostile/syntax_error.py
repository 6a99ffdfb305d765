# into: ex03_registry
def register_run_model(run_id, model_name:
    return None
