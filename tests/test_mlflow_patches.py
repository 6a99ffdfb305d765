"""The kit's patches of MLflow (grader/sandbox/mlflow_patches.py) still take hold: every
name they replace exists in the installed MLflow, and MLflow still calls it where the kit
relies on it. A release that renames one fails here, not silently in a slower grading."""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

from conftest import REPO
from grader.sandbox import mlflow_patches

# Run in a process of its own: the patches change MLflow for the whole process.
PROBE = r"""
import collections, importlib, json, sys, tempfile, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, sys.argv[1])
import mlflow, mlflow.pyfunc, mlflow.sklearn
import pandas as pd
from sklearn.linear_model import LogisticRegression
from grader.sandbox import mlflow_patches as patches, warm
import mlflow.projects, mlflow.projects.backend.local

originals = {f"{m}.{n}": getattr(importlib.import_module(m), n) for m, n in patches.PATCHED}
patches.pin_store(); patches.skip_machine_probes(); patches.speed_up_sqlite_stores()
patches.warm_project_scripts(warm)
report = {"replaced": {k: getattr(importlib.import_module(k.rsplit(".", 1)[0]), k.rsplit(".", 1)[1]) is not v
                       for k, v in originals.items()},
          "same": {k: [o for o, w in originals.items() if w is v and o != k] for k, v in originals.items()}}
calls = collections.Counter()

def counting(module, name):
    patched = getattr(importlib.import_module(module), name)
    def count(*args, **kwargs):
        calls[f"{module}.{name}"] += 1
        return patched(*args, **kwargs)
    setattr(importlib.import_module(module), name, count)

for module, name in patches.PATCHED:
    if not name.startswith("set_"):
        counting(module, name)
folder = tempfile.mkdtemp()
uri = f"sqlite:///{folder}/mlflow.db"
mlflow.set_tracking_uri(uri)  # ignored: pinned
report["pinned"] = mlflow.get_tracking_uri() != uri
client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
experiment = client.create_experiment("patches", artifact_location=f"{folder}/mlruns")
mlflow.MlflowClient(tracking_uri=uri).search_experiments()  # a second store opening of the same schema
X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
model = LogisticRegression().fit(X, [0, 1, 0, 1])
mlflow.sklearn.save_model(model, f"{folder}/model")
mlflow.pyfunc.load_model(f"{folder}/model").predict(X)
import os; os.environ["MLFLOW_TRACKING_URI"] = uri
with mlflow.start_run(experiment_id=experiment):
    pass
# A project whose entry point is this environment's python: its script runs in a fork of this
# process (sklearn, imported here and not by the script, is already there).
project = f"{folder}/project"
import os; os.mkdir(project)
open(f"{project}/MLproject", "w").write(
    "name: probe\nentry_points:\n  main:\n    parameters:\n      n: {type: float, default: 1}\n"
    "    command: \"python train.py {n}\"\n")
open(f"{project}/train.py", "w").write(
    "import sys\nimport mlflow\nwith mlflow.start_run():\n"
    "    mlflow.log_metric('n', float(sys.argv[1]))\n    mlflow.log_param('warm', 'sklearn' in sys.modules)\n")
submitted = mlflow.projects.run(project, parameters={"n": 2.5}, experiment_id=experiment, env_manager="local")
project_run = mlflow.MlflowClient(tracking_uri=uri).get_run(submitted.run_id)
report["project"] = {"status": project_run.info.status, "metrics": project_run.data.metrics,
                     "params": project_run.data.params, "source": project_run.data.tags.get("mlflow.source.type")}
report["calls"] = dict(calls)
print(json.dumps(report))
"""


def test_every_patched_name_exists_in_the_installed_mlflow():
    missing = [f"{module}.{name}" for module, name in mlflow_patches.PATCHED
               if not hasattr(importlib.import_module(module), name)]
    assert not missing, f"MLflow no longer has {missing}: grader/sandbox/mlflow_patches.py patches nothing there"


def test_mlflow_calls_what_the_kit_patched(tmp_path):
    done = subprocess.run([sys.executable, "-c", PROBE, str(REPO)], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
                                             "MLFLOW_DISABLE_TELEMETRY": "true"})
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert all(report["replaced"].values()), report["replaced"]
    assert report["pinned"], "mlflow.set_tracking_uri still changed the tracking URI after pin_store()"
    # MLflow's project runner ran the script, in a fork of the warm process.
    assert report["project"] == {"status": "FINISHED", "metrics": {"n": 2.5}, "params": {"n": "2.5", "warm": "True"},
                                 "source": "PROJECT"}, report["project"]
    # Each patched name is one MLflow still calls (set_*: checked above), or the definition
    # that callers import (patched too, for modules imported later); the store patches
    # serve every store opened, the others every saved, loaded or started model and run.
    called = set(report["calls"])
    never = [key for key in (f"{m}.{n}" for m, n in mlflow_patches.PATCHED if not n.startswith("set_"))
             if key not in called and not called & set(report["same"][key])]
    assert not never, f"MLflow no longer calls {never}: the patch of it saves nothing (calls seen: {report['calls']})"
