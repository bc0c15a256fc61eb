"""`clawgen web BUILD_DIR`: serve a build's browser install page on localhost."""

from __future__ import annotations

from pathlib import Path

import click

from clawgen.guard import PathArg, run_guarded


@click.command("web")
@click.argument("build_dir", type=PathArg())
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port on 127.0.0.1 (0 picks a free one).")
def web_command(build_dir: Path, port: int) -> None:
    """Serve BUILD_DIR's install page (web/index.html) on localhost, for a browser with Web Serial."""

    def body() -> None:
        from clawgen.webinstall import INDEX, WEB_DIR, check_servable, make_server

        check_servable(build_dir)
        try:
            srv = make_server(build_dir, port)
        except OSError as e:
            from clawgen.diagnostics import UsageError

            raise UsageError(f"cannot listen on 127.0.0.1:{port}: {e.strerror or e}; pick another --port") from e
        url = f"http://127.0.0.1:{srv.server_address[1]}/{WEB_DIR}/{INDEX}"
        click.echo(f"serving {build_dir} on localhost only: open {url} in Chrome or Edge (Ctrl-C stops)")
        try:
            srv.serve_forever()
        except KeyboardInterrupt:
            click.echo("stopped")
        finally:
            srv.server_close()

    run_guarded(body)


def register(group: click.Group) -> None:
    group.add_command(web_command)
