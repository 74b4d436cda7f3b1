"""Roles and what each may do. One table, checked on every endpoint through ``may``.

owner      everything, including granting ownership and crediting the wallet
admin      everything in the tenant except granting ownership
developer  API keys, contacts, tags and sending; no member management or branding
agent      contacts and conversations; no settings
viewer     read only
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    DEVELOPER = "developer"
    AGENT = "agent"
    VIEWER = "viewer"


class Permission(StrEnum):
    READ = "read"
    CONTACTS_WRITE = "contacts.write"
    TAGS_WRITE = "tags.write"
    API_KEYS_MANAGE = "api_keys.manage"
    MEMBERS_MANAGE = "members.manage"
    SETTINGS_WRITE = "settings.write"
    MESSAGES_SEND = "messages.send"
    APPS_MANAGE = "apps.manage"


_ALL = frozenset(Permission)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: _ALL,
    Role.ADMIN: _ALL,
    Role.DEVELOPER: frozenset({Permission.READ, Permission.CONTACTS_WRITE, Permission.TAGS_WRITE,
                               Permission.API_KEYS_MANAGE, Permission.MESSAGES_SEND,
                               Permission.APPS_MANAGE}),
    Role.AGENT: frozenset({Permission.READ, Permission.CONTACTS_WRITE, Permission.MESSAGES_SEND}),
    Role.VIEWER: frozenset({Permission.READ}),
}

ROLE_DESCRIPTIONS: dict[Role, str] = {
    Role.OWNER: "Full control, including granting ownership and the wallet.",
    Role.ADMIN: "Full control of the tenant except granting ownership.",
    Role.DEVELOPER: "API keys, SMS apps, contacts, tags and sending; no members or branding.",
    Role.AGENT: "Contacts and messages; no settings.",
    Role.VIEWER: "Read-only access.",
}


def may(role: Role, permission: Permission) -> bool:
    """Whether ``role`` holds ``permission``."""
    return permission in ROLE_PERMISSIONS[role]


def may_issue_key(creator: Role, key_role: Role) -> bool:
    """Whether ``creator`` may create or revoke an API key of ``key_role``: it needs
    ``api_keys.manage``, and the key's role must be one it may grant (``may_grant``) or, so that
    developers (who manage keys but not members) can make keys for their apps, a non-owner role
    whose permissions ``creator`` all holds: a developer makes developer, agent and viewer keys.
    """
    if not may(creator, Permission.API_KEYS_MANAGE):
        return False
    if may_grant(creator, key_role):
        return True
    return key_role is not Role.OWNER and ROLE_PERMISSIONS[key_role] <= ROLE_PERMISSIONS[creator]


def may_grant(granter: Role, granted: Role) -> bool:
    """Whether a member with ``granter`` may give someone ``granted`` (only owners make owners)."""
    if not may(granter, Permission.MEMBERS_MANAGE):
        return False
    return granted is not Role.OWNER or granter is Role.OWNER
