"""The role table: what each role may do, and who may grant which role."""

from __future__ import annotations

import pytest

from tidings.domain.roles import (
    ROLE_DESCRIPTIONS,
    ROLE_PERMISSIONS,
    Permission,
    Role,
    may,
    may_grant,
)

P = Permission
ALLOWED: dict[Role, set[Permission]] = {
    Role.OWNER: set(Permission),
    Role.ADMIN: set(Permission),
    Role.DEVELOPER: {P.READ, P.CONTACTS_WRITE, P.TAGS_WRITE, P.API_KEYS_MANAGE, P.MESSAGES_SEND,
                     P.APPS_MANAGE},
    Role.AGENT: {P.READ, P.CONTACTS_WRITE, P.MESSAGES_SEND},
    Role.VIEWER: {P.READ},
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_may_follows_the_role_table(role: Role, permission: Permission) -> None:
    assert may(role, permission) is (permission in ALLOWED[role])


def test_every_role_has_permissions_and_a_description() -> None:
    assert set(ROLE_PERMISSIONS) == set(Role) == set(ROLE_DESCRIPTIONS)
    assert all(P.READ in permissions for permissions in ROLE_PERMISSIONS.values())


@pytest.mark.parametrize(("granter", "granted", "allowed"), [
    (Role.OWNER, Role.OWNER, True),
    (Role.OWNER, Role.VIEWER, True),
    (Role.ADMIN, Role.OWNER, False),
    (Role.ADMIN, Role.ADMIN, True),
    (Role.ADMIN, Role.DEVELOPER, True),
    (Role.DEVELOPER, Role.VIEWER, False),
    (Role.AGENT, Role.VIEWER, False),
    (Role.VIEWER, Role.VIEWER, False),
])
def test_only_member_managers_grant_roles_and_only_owners_make_owners(
        granter: Role, granted: Role, allowed: bool) -> None:
    assert may_grant(granter, granted) is allowed
