"""`spadapt serve`: one base model with many adapters over HTTP (`spadapt.serve`).

Bad options or adapters exit with code 2 before the port is bound; then uvicorn serves until
interrupted.
"""

from __future__ import annotations

from pathlib import Path

import typer

from .exits import exit_codes


def serve_command(
    model: str = typer.Option(..., help="Base model: a Hugging Face folder or builtin:NAME."),
    adapter: list[str] = typer.Option(
        [], help="NAME=DIR (an adapter directory) or NAME\\[@V] (from --registry); repeatable."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind (loopback by default)."),
    port: int = typer.Option(8000, help="TCP port."),
    registry: Path | None = typer.Option(
        None, help="spadapt registry root, for NAME\\[@V] references."),
    api_key: str | None = typer.Option(None, envvar="SPADAPT_API_KEY",
                                       help="Require 'Authorization: Bearer KEY'."),
    max_batch_size: int = typer.Option(32, help="Rows per forward."),
    max_batch_wait_ms: float = typer.Option(5.0, help="Longest wait for a batch to fill."),
    max_resident_adapters: int = typer.Option(8, help="Adapters loaded at once (LRU)."),
    max_texts: int = typer.Option(64, help="Texts per /v1/classify request."),
    max_text_chars: int = typer.Option(4000, help="Characters per text or prompt."),
    max_new_tokens: int = typer.Option(256, help="Upper bound on max_tokens."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Serve one base model with many adapters over HTTP (classify, OpenAI completions)."""
    import uvicorn

    from ..serve.app import create_app
    from ..serve.config import ServeConfig, parse_adapter_option

    with exit_codes():
        adapters = dict(parse_adapter_option(a) for a in adapter)
        config = ServeConfig(
            model=model, adapters=adapters, host=host, port=port,
            registry=str(registry) if registry is not None else None, api_key=api_key,
            max_batch_size=max_batch_size, max_batch_wait_ms=max_batch_wait_ms,
            max_resident_adapters=max_resident_adapters, max_texts=max_texts,
            max_text_chars=max_text_chars, max_new_tokens=max_new_tokens)
        app = create_app(config)
    uvicorn.run(app, host=config.host, port=config.port, log_level=log_level)



def register(app: typer.Typer) -> None:
    """Add `serve` to the main command."""
    app.command("serve")(serve_command)
