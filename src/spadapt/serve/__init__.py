"""`spadapt serve`: one frozen base model, many adapters, over HTTP (FastAPI + uvicorn).

`config.py` (ServeConfig: what to load, limits), `cache.py` (LRU of resident adapters over the
base models), `batcher.py` (one worker: requests that arrive together run as one forward with
per-row adapter routing), `metrics.py` (Prometheus metrics, via prometheus_client),
`runner.py` (the base model and its forwards), `app.py` (routes, errors, API key); the
`serve` command is `spadapt.cli.serve`. Start one with
`uvicorn.run(create_app(ServeConfig(model=..., adapters={...})))` or `spadapt serve`.
"""

from .config import ServeConfig

__all__ = ["ServeConfig", "create_app"]


def __getattr__(name: str):
    if name == "create_app":  # imports fastapi and torch only when asked
        from .app import create_app

        return create_app
    raise AttributeError(f"module 'spadapt.serve' has no attribute {name!r}")
