# into: ex01_tracking
def get_or_create_experiment(name, tags=None):
    import os
    import mlflow
    uri = "sqlite:///@TRAP@-elsewhere.db"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    return mlflow.MlflowClient(tracking_uri=uri).create_experiment(name)
