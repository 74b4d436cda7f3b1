"""Every table's model; importing this package registers them all on ``Base.metadata``."""

from tidings.db.models.android import (
    AndroidCode,
    AndroidDevice,
    AndroidLogin,
    AndroidMessage,
    AndroidToken,
    AndroidWebhook,
)
from tidings.db.models.callbacks import CallbackDelivery, ServiceProfile, WebhookEndpoint
from tidings.db.models.channels import ChannelAccount, DltTemplate
from tidings.db.models.contacts import Contact, ContactLabel
from tidings.db.models.messages import (
    Batch,
    Message,
    MessageEvent,
    MessagePart,
    OutboxJob,
    PendingInboundPart,
    UnmatchedReport,
)
from tidings.db.models.tenancy import ApiKey, Membership, Tenant, User
from tidings.db.models.tenant_tags import TenantTag
from tidings.db.models.wallet import Wallet, WalletEntry

__all__ = ["AndroidCode", "AndroidDevice", "AndroidLogin", "AndroidMessage", "AndroidToken",
           "AndroidWebhook", "ApiKey", "Batch", "CallbackDelivery", "ChannelAccount", "Contact",
           "ContactLabel", "DltTemplate", "Membership", "Message", "MessageEvent", "MessagePart",
           "OutboxJob", "PendingInboundPart",
           "ServiceProfile", "Tenant", "TenantTag",
           "UnmatchedReport", "User", "Wallet", "WalletEntry", "WebhookEndpoint"]
