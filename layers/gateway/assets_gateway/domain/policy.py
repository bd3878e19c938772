"""The org's policy document and the pure decision over one request.

The document is data (validated by these models on load and on publish); `decide` returns every
reason for a refusal, not only the first, so a team fixes everything in one go.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Annotated, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from assets_gateway.domain.deploy_policy import (
    DeployRules,
    EffectiveDeployRules,
    effective_deploy_rules,
)
from assets_gateway.domain.errors import Problem
from assets_gateway.domain.globs import Glob, GlobSet
from assets_gateway.domain.identity import normalise_principal
from assets_gateway.domain.manifest import MAX_ENTRIES, MAX_FILE_BYTES, Manifest
from assets_gateway.domain.quota import TeamQuotas
from assets_gateway_common.json_pointer import json_pointer

TeamName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
AccountId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
PrincipalArn = Annotated[
    str, StringConstraints(pattern=r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:[A-Za-z0-9+=,.@_/-]+$")
]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]

T = TypeVar("T")

# The pydantic error type of a principal listed by two teams (the validator reports it with
# pointers of its own).
DUPLICATE_PRINCIPAL = "duplicate_principal"

# How many offending paths a refusal lists before it summarises the rest.
MAX_PATH_REASONS = 10


# Quotas of a team whose policy (and the defaults) say nothing.
BUILT_IN_QUOTAS = TeamQuotas(
    sessions_per_minute=60,
    sessions_per_day=2_000,
    entries_per_day=10_000_000,
    bytes_per_day=2**40,
    deploy_calls_per_minute=120,
    deploys_per_hour=30,
    deploys_per_day=200,
)


class Quotas(BaseModel):
    """Per-team quotas per window; unset values fall back to the defaults, then built-ins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sessions_per_minute: int | None = Field(default=None, ge=0)
    sessions_per_day: int | None = Field(default=None, ge=0)
    entries_per_day: int | None = Field(default=None, ge=0)
    bytes_per_day: int | None = Field(default=None, ge=0)
    # The deploy door: every call through it (reads included), and the Worker uploads and
    # deployments among them.
    deploy_calls_per_minute: int | None = Field(default=None, ge=0)
    deploys_per_hour: int | None = Field(default=None, ge=0)
    deploys_per_day: int | None = Field(default=None, ge=0)


class Limits(BaseModel):
    """Per-request limits; a team's values override the document's defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_entries: int | None = Field(default=None, ge=0, le=MAX_ENTRIES)
    max_bytes: int | None = Field(default=None, ge=0)
    max_file_bytes: int | None = Field(default=None, ge=0, le=MAX_FILE_BYTES)
    require_full_hash: bool | None = None
    quotas: Quotas = Quotas()
    # What the team's Worker uploads, deployments and settings may do (`deploy_policy`).
    deploy: DeployRules = DeployRules()


class TeamPolicy(Limits):
    description: str = ""
    principals: list[PrincipalArn] = Field(min_length=1)
    accounts: list[AccountId] = Field(default_factory=list)
    scripts: list[Glob] = Field(default_factory=list)
    namespaces: list[Glob] = Field(default_factory=list)
    paths: list[Glob] = Field(default_factory=lambda: ["/**"])
    suspended: bool = False
    # Why, told to the team's callers in the 19010 refusal.
    suspended_reason: str = Field(default="", max_length=500)

    @cached_property
    def script_globs(self) -> GlobSet:
        return GlobSet(self.scripts)

    @cached_property
    def namespace_globs(self) -> GlobSet:
        return GlobSet(self.namespaces)

    @cached_property
    def path_globs(self) -> GlobSet:
        return GlobSet(self.paths)


@dataclass(frozen=True)
class EffectiveLimits:
    max_entries: int
    max_bytes: int | None
    max_file_bytes: int
    require_full_hash: bool
    quotas: TeamQuotas
    deploy: EffectiveDeployRules


class Grant(BaseModel):
    """A temporary quota increase: `quotas` are added to the team's own until `expires_at`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    team: TeamName
    quotas: Quotas
    reason: Reason
    expires_at: AwareDatetime
    granted_by: str = Field(default="", max_length=2048)
    granted_at: AwareDatetime | None = None

    def active(self, at: datetime) -> bool:
        return at < self.expires_at


class KillSwitch(BaseModel):
    """Engaged, the session door answers 503 19013 to everyone; the admin door stays up."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    engaged: bool = False
    reason: str = Field(default="", max_length=500)
    by: str = Field(default="", max_length=2048)
    at: AwareDatetime | None = None


class PolicyDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Principals allowed on the admin door, besides those the template names.
    admins: list[PrincipalArn] = Field(default_factory=list)
    defaults: Limits = Limits()
    teams: dict[TeamName, TeamPolicy]
    grants: list[Grant] = Field(default_factory=list)
    kill_switch: KillSwitch = KillSwitch()

    @model_validator(mode="after")
    def _each_principal_belongs_to_one_team(self) -> PolicyDocument:
        owners: dict[str, str] = {}
        for name, team in self.teams.items():
            for arn in team.principals:
                principal = normalise_principal(arn)
                if owners.get(principal, name) != name:
                    raise PydanticCustomError(
                        DUPLICATE_PRINCIPAL,
                        "principal {principal} is listed by teams {first!r} and {second!r}; "
                        "a principal belongs to one team",
                        {"principal": principal, "first": owners[principal], "second": name},
                    )
                owners[principal] = name
        return self

    def is_admin(self, principal_arn: str) -> bool:
        return normalise_principal(principal_arn) in {normalise_principal(a) for a in self.admins}

    @cached_property
    def _team_by_principal(self) -> Mapping[str, str]:
        return {
            normalise_principal(arn): name
            for name, team in self.teams.items()
            for arn in team.principals
        }

    def team_of(self, principal_arn: str) -> str | None:
        return self._team_by_principal.get(normalise_principal(principal_arn))

    @cached_property
    def _deploy_rules(self) -> Mapping[str, EffectiveDeployRules]:
        """Each team's deploy rules, resolved once per document (they do not depend on the
        moment), so requests reuse them and their compiled globs."""
        return {
            name: effective_deploy_rules(team.deploy, self.defaults.deploy)
            for name, team in self.teams.items()
        }

    @cached_property
    def _own_limits(self) -> Mapping[str, EffectiveLimits]:
        """Each team's limits before grants, resolved once per document, as its deploy rules."""
        return {name: self._resolve_limits(name) for name in self.teams}

    @cached_property
    def _grants_by_team(self) -> Mapping[str, list[Grant]]:
        by_team: dict[str, list[Grant]] = {}
        for grant in self.grants:
            by_team.setdefault(grant.team, []).append(grant)
        return by_team

    def limits_of(self, team: str, at: datetime | None = None) -> EffectiveLimits:
        """The team's limits; with `at`, its grants active at that moment are added."""
        limits = self._own_limits[team]
        if at is None or team not in self._grants_by_team:
            return limits
        quotas = self._with_grants(team, limits.quotas, at)
        return limits if quotas is limits.quotas else replace(limits, quotas=quotas)

    def _resolve_limits(self, team: str) -> EffectiveLimits:
        own, defaults = self.teams[team], self.defaults
        max_entries = _first_set(own.max_entries, defaults.max_entries, MAX_ENTRIES)
        max_file_bytes = _first_set(own.max_file_bytes, defaults.max_file_bytes, MAX_FILE_BYTES)
        full_hash = _first_set(own.require_full_hash, defaults.require_full_hash, False)
        max_bytes = own.max_bytes if own.max_bytes is not None else defaults.max_bytes
        quotas = TeamQuotas(
            **{
                name: _first_set(
                    getattr(own.quotas, name),
                    getattr(defaults.quotas, name),
                    getattr(BUILT_IN_QUOTAS, name),
                )
                for name in Quotas.model_fields
            }
        )
        return EffectiveLimits(
            max_entries=max_entries,
            max_bytes=max_bytes,
            max_file_bytes=max_file_bytes,
            require_full_hash=full_hash,
            quotas=quotas,
            deploy=self._deploy_rules[team],
        )

    def active_grants(self, team: str, at: datetime) -> list[Grant]:
        return [grant for grant in self._grants_by_team.get(team, ()) if grant.active(at)]

    def _with_grants(self, team: str, quotas: TeamQuotas, at: datetime) -> TeamQuotas:
        extra = dict.fromkeys(Quotas.model_fields, 0)
        for grant in self.active_grants(team, at):
            for name in extra:
                extra[name] += getattr(grant.quotas, name) or 0
        if not any(extra.values()):
            return quotas
        return TeamQuotas(**{name: getattr(quotas, name) + extra[name] for name in extra})


def moment(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)


def _first_set(own: T | None, default: T | None, built_in: T) -> T:
    if own is not None:
        return own
    return built_in if default is None else default


@dataclass(frozen=True)
class SessionTarget:
    """Where the session is for: an account and a script, optionally in a dispatch namespace."""

    account_id: str
    script_name: str
    namespace: str | None = None


@dataclass(frozen=True)
class ManifestSummary:
    """What is known of a manifest that is not at hand (an admin's explain, a recorded
    decision): its size and, when known, its paths and its largest file."""

    count: int
    total_bytes: int
    paths: tuple[str, ...] | None = None
    largest_file_bytes: int | None = None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reasons: tuple[Problem, ...]
    # Rules a summary could not be checked against ("paths", "file sizes").
    unchecked: tuple[str, ...] = ()


def decide(
    team_name: str,
    team: TeamPolicy,
    limits: EffectiveLimits,
    target: SessionTarget,
    manifest: Manifest | ManifestSummary,
) -> Decision:
    """Every reason the team may not create this session; allowed when there is none."""
    reasons = access_reasons(
        team_name, team, target.account_id, target.script_name, target.namespace
    )
    reasons.extend(_size_reasons(team_name, limits, manifest))
    unchecked: list[str] = []
    oversized = _oversized(manifest, limits.max_file_bytes)
    if oversized is None:
        unchecked.append("file sizes")
    else:
        reasons.extend(_oversized_reasons(team_name, limits, oversized))
    paths = manifest.paths if isinstance(manifest, ManifestSummary) else manifest.entries
    if paths is None:
        unchecked.append("paths")
    else:
        reasons.extend(_path_reasons(team_name, team, paths))
    return Decision(allowed=not reasons, reasons=tuple(reasons), unchecked=tuple(unchecked))


def access_reasons(
    team_name: str,
    team: TeamPolicy,
    account_id: str,
    script_name: str | None,
    namespace: str | None = None,
) -> list[Problem]:
    """Every reason the team may not touch this account, script (None: the account itself) and
    dispatch namespace."""
    reasons: list[Problem] = []
    if account_id not in team.accounts:
        reasons.append(Problem(f"team {team_name!r} may not use account {account_id}"))
    if script_name is not None and not team.script_globs.matches(script_name):
        reasons.append(
            Problem(
                f"team {team_name!r} may not use script {script_name!r} "
                f"(allowed: {', '.join(team.scripts) or 'none'})"
            )
        )
    if namespace is not None and not team.namespace_globs.matches(namespace):
        reasons.append(
            Problem(
                f"team {team_name!r} may not use dispatch namespace {namespace!r} "
                f"(allowed: {', '.join(team.namespaces) or 'none'})"
            )
        )
    return reasons


def _size_reasons(
    team_name: str, limits: EffectiveLimits, manifest: Manifest | ManifestSummary
) -> list[Problem]:
    reasons: list[Problem] = []
    if manifest.count > limits.max_entries:
        reasons.append(
            Problem(
                f"manifest has {manifest.count} entries; team {team_name!r} may send at most "
                f"{limits.max_entries}",
                pointer="/manifest",
            )
        )
    if limits.max_bytes is not None and manifest.total_bytes > limits.max_bytes:
        reasons.append(
            Problem(
                f"manifest totals {manifest.total_bytes} bytes; team {team_name!r} may send at "
                f"most {limits.max_bytes}",
                pointer="/manifest",
            )
        )
    return reasons


def _oversized(manifest: Manifest | ManifestSummary, limit: int) -> list[str] | None:
    """The paths of files over `limit`; None when the sizes are not known."""
    if isinstance(manifest, ManifestSummary):
        if manifest.largest_file_bytes is None:
            return None
        return ["(largest file)"] if manifest.largest_file_bytes > limit else []
    if manifest.largest_file_bytes <= limit:  # known without a pass over the entries
        return []
    return [p for p, e in manifest.entries.items() if e["size"] > limit]


def _oversized_reasons(
    team_name: str, limits: EffectiveLimits, oversized: list[str]
) -> list[Problem]:
    reasons = [
        Problem(
            f"file is larger than team {team_name!r}'s limit of {limits.max_file_bytes} bytes",
            pointer=json_pointer("manifest", path, "size"),
        )
        for path in oversized[:MAX_PATH_REASONS]
    ]
    if len(oversized) > MAX_PATH_REASONS:
        reasons.append(
            Problem(f"and {len(oversized) - MAX_PATH_REASONS} more files over the limit")
        )
    return reasons


def _path_reasons(team_name: str, team: TeamPolicy, paths: Iterable[str]) -> list[Problem]:
    globs = team.path_globs
    if globs.matches_every_path:  # the common "/**": no call per path of 100,000
        return []
    outside = [path for path in paths if not globs.matches(path)]
    reasons = [
        Problem(
            f"path is outside team {team_name!r}'s allowed paths ({', '.join(team.paths)})",
            pointer=json_pointer("manifest", path),
        )
        for path in outside[:MAX_PATH_REASONS]
    ]
    if len(outside) > MAX_PATH_REASONS:
        reasons.append(Problem(f"and {len(outside) - MAX_PATH_REASONS} more paths outside"))
    return reasons
