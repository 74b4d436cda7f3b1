"""The worker process's SMPP binds: one ``SmppConnector`` per active SMPP app.

The dispatcher owns one ``SmppBinds``. Each time it reloads the active apps it calls ``sync``:
new SMPP apps start binding, apps deleted, suspended or edited (their ``updated_at`` moved)
unbind, and edited ones bind again with the new settings. It claims an SMPP app's live
messages only while ``ready`` (a bind is up), so while an SMSC is unreachable they wait in the
queue, and sends them with ``send``.

What the binds receive (delivery receipts, inbound messages) is stored through a
``ReportIngest`` of this process, the same group-commit path provider webhooks take, before
the SMSC is acknowledged. With several worker nodes (PostgreSQL) each node binds every SMPP
app: an SMSC sees ``binds`` sessions per node.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tidings.db.models import ChannelAccount
from tidings.pipeline.report_ingest import ReportIngest
from tidings.pipeline.sending import send_context
from tidings.providers.base import OutboundSms, Retry, SendOutcome, WebhookEvent
from tidings.providers.sms.smpp import Config
from tidings.providers.sms.smpp.connector import SmppConnector
from tidings.runtime import Runtime

log = logging.getLogger(__name__)

SMPP = "SMPP"
CLAIM_WINDOWS = 16


@dataclass
class _Bound:
    account: ChannelAccount
    connector: SmppConnector


class SmppBinds:
    """The connectors of this worker process, by app id."""

    def __init__(self, runtime: Runtime, reports: ReportIngest) -> None:
        self._runtime = runtime
        self._reports = reports
        self._bound: dict[str, _Bound] = {}

    async def sync(self, accounts: Iterable[ChannelAccount]) -> None:
        """Bind the SMPP apps among ``accounts`` (the active ones) and unbind the rest."""
        wanted = {account.id: account for account in accounts if account.provider == SMPP}
        for app_id, bound in list(self._bound.items()):
            account = wanted.get(app_id)
            if account is None or account.updated_at != bound.account.updated_at:
                del self._bound[app_id]
                await bound.connector.stop()
        for app_id, account in wanted.items():
            if app_id not in self._bound:
                self._start(account)

    def _start(self, account: ChannelAccount) -> None:
        context = send_context(account, self._runtime.secret_box, self._runtime.settings,
                               simulated=False)
        try:
            config = Config.model_validate(dict(context.config))
            password = context.credentials["password"]
        except (ValueError, KeyError):
            log.error("smpp app %s: its configuration is not valid; not binding", account.id)
            return

        async def store(events: Sequence[WebhookEvent]) -> None:
            await self._reports.submit(account, events)

        connector = SmppConnector(account.id, config, password, store)
        connector.start()
        self._bound[account.id] = _Bound(account, connector)

    @staticmethod
    def claim_window(account: ChannelAccount) -> int:
        """How many of the app's messages the dispatcher may have awaiting an answer:
        ``CLAIM_WINDOWS`` times what its binds hold outstanding, so claims and outcome
        commits come in batches big enough to keep the binds' windows full between them."""
        try:
            config = Config.model_validate(account.config or {})
        except ValueError:
            return 0
        return CLAIM_WINDOWS * config.window * config.binds

    def ready(self, app_id: str) -> bool:
        """A bind of the app that can send is up."""
        bound = self._bound.get(app_id)
        return bound is not None and bound.connector.ready

    async def send(self, app_id: str, message: OutboundSms) -> SendOutcome:
        """Submit ``message`` through the app's binds."""
        bound = self._bound.get(app_id)
        if bound is None:
            return Retry("smpp_not_bound", "the app has no binds in this worker")
        return await bound.connector.send(message)

    async def stop(self) -> None:
        """Unbind every app."""
        bound, self._bound = self._bound, {}
        for entry in bound.values():
            await entry.connector.stop()
