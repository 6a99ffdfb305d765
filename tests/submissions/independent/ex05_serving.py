"""Module 5: serving a model (independent implementation, written from the kit's CURRICULUM.md)."""
import json
import urllib.error
import urllib.request

import numpy as np


def serving_payload(X) -> dict:
    split = json.loads(X.to_json(orient="split", index=False))
    return {"dataframe_split": {"columns": split["columns"], "data": split["data"]}}


def score_with_server(url: str, X) -> np.ndarray:
    body = json.dumps({"dataframe_split": json.loads(X.to_json(orient="split", index=False))}).encode()
    request = urllib.request.Request(url + "/invocations", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        text = error.read().decode(errors="replace")
        try:
            message = json.loads(text).get("message", text)
        except ValueError:
            message = text
        raise ValueError(f"HTTP {error.code} from the scoring server: {message}") from None
    return np.asarray(answer["predictions"])


def serve_command(model_uri: str, port: int) -> list[str]:
    return ["mlflow", "models", "serve", "-m", model_uri, "-h", "127.0.0.1", "-p", str(port),
            "--env-manager", "local"]
