"""Who is calling: the IAM principal API Gateway authenticated, normalised for policy lookup (pure).

An assumed-role ARN names the role *and* a session that differs on every assumption, and carries
no role path; policies name roles. So both sides are reduced to `arn:<partition>:iam::<account>:
role/<name>` before they are compared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ASSUMED_ROLE = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/[^/]+$"
)
_ROLE = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/(?:.*/)?(?P<role>[^/]+)$"
)


def normalise_principal(arn: str) -> str:
    """Role sessions and role paths collapse to the bare role ARN; other principals stay as is."""
    match = _ASSUMED_ROLE.match(arn) or _ROLE.match(arn)
    if match is None:
        return arn
    return f"arn:{match['partition']}:iam::{match['account']}:role/{match['role']}"


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of a door.

    The API door knows the IAM principal and the policy maps it to a team. The S3 door knows the
    object's writer (a tag the bucket policy forces to the writer's own principal ARN) and the
    key's team prefix (fenced by its `assets-team` tag): `team` is set, and the policy must map
    the writer to that very team.
    """

    principal_arn: str
    source: str = "api"
    team: str | None = None

    @property
    def principal(self) -> str:
        return normalise_principal(self.principal_arn)
