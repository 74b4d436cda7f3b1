"""The ``tidings`` command (typer): ``tidings --help`` lists every command.

    serve [--host H] [--port P] [--no-workers]      the API (+ workers), migrating first
    worker                                           the workers alone
    migrate                                          apply pending migrations
    tenant create|list                               tenants, with an owner and an owner key
    user add                                         a user's membership in a tenant
    apikey create|list|revoke                        tenants' API keys
    wallet credit                                    money into a tenant's wallet

Every setting comes from ``TIDINGS_*`` environment variables (``tidings.config``). The commands
are thin: each opens one session, calls services, commits once. Output conventions are in
``tidings.cli.common``.
"""

from __future__ import annotations

import typer

from tidings.cli import api_keys, server, tenants, wallet
from tidings.logging_setup import configure_logging

app = typer.Typer(
    name="tidings",
    help="Tidings: a self-hosted, multi-tenant messaging gateway. Settings are TIDINGS_* "
         "environment variables (see README, Configuration).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _main() -> None:
    # Before anything reads settings: the generated-secret-key warning must reach stderr.
    configure_logging()


app.command()(server.serve)
app.command()(server.worker)
app.command()(server.migrate)
app.add_typer(tenants.tenant_app, name="tenant")
app.add_typer(tenants.user_app, name="user")
app.add_typer(api_keys.apikey_app, name="apikey")
app.add_typer(wallet.wallet_app, name="wallet")

__all__ = ["app"]
