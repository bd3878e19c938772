"""Validation of a proposed policy before anyone publishes it (pure).

Schema errors come from the models, each with a JSON pointer into the submitted body. Semantic
checks catch what a schema cannot: a principal in two teams, grants for teams that do not exist,
globs that can never match, quotas the org's Cloudflare budget will never let a team reach.
A schema error in one part does not hide the semantic problems of the others: one answer lists
every problem. Errors stop a publish; warnings are reported and published with it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError

from assets_gateway.domain.deploy_policy import deploy_rule_warnings
from assets_gateway.domain.errors import Problem
from assets_gateway.domain.identity import normalise_principal
from assets_gateway.domain.policy import DUPLICATE_PRINCIPAL, PolicyDocument
from assets_gateway.domain.quota import GLOBAL_WINDOW, MINUTE
from assets_gateway_common.json_pointer import json_pointer

# Script and dispatch namespace names hold letters, digits, '-' and '_' (globs add * and ?).
_NAME_GLOB = re.compile(r"[A-Za-z0-9_*?-]+")


@dataclass(frozen=True)
class Validation:
    document: PolicyDocument | None
    errors: tuple[Problem, ...]
    warnings: tuple[Problem, ...]

    @property
    def valid(self) -> bool:
        return self.document is not None and not self.errors


def validate_policy(
    raw: Any, *, global_budget: int, now: datetime, base: str = "/policy"
) -> Validation:
    """Every schema and semantic problem of `raw`; `base` is its pointer in the request body.

    A schema error does not hide the rest: the semantic checks then run over the parts that
    did parse (each team, grant, admin and setting on its own), so one answer lists them all."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    if isinstance(raw, Mapping):
        errors.extend(_duplicate_principals(raw, base, warnings))
    left_out: set[str] = set()
    try:
        document = PolicyDocument.model_validate(raw)
    except ValidationError as exc:
        errors.extend(
            Problem(_schema_message(error), pointer=base + _pointer(error["loc"]))
            for error in exc.errors(include_input=False, include_url=False)
            if error["type"] != DUPLICATE_PRINCIPAL
        )
        if not isinstance(raw, Mapping):
            return Validation(None, tuple(errors), tuple(warnings))
        document, left_out = _parts_that_parse(raw)
    errors.extend(_unknown_teams(document, _team_names(raw, document), base))
    errors.extend(_globs_matching_nothing(document, base))
    if "defaults" not in left_out:  # teams' quotas fall back on the defaults
        budget_errors, budget_warnings = _quotas_against_budget(document, global_budget, base)
        errors.extend(budget_errors)
        warnings.extend(budget_warnings)
    warnings.extend(_other_warnings(document, now, base))
    warnings.extend(_deploy_warnings(document, base))
    return Validation(document if not errors else None, tuple(errors), tuple(warnings))


def _parts_that_parse(raw: Mapping[str, Any]) -> tuple[PolicyDocument, set[str]]:
    """A document of the parts of `raw` that pass their own schema (a field, or each item of a
    list or mapping field), and the names of the fields that lost something."""
    parts: dict[str, Any] = {"teams": {}}
    left_out: set[str] = set()
    for name, field in PolicyDocument.model_fields.items():
        if name not in raw:
            continue
        value = _parsed(field.annotation, raw[name])
        if value is None:
            left_out.add(name)
            value = _items_that_parse(field.annotation, raw[name])
        if value is not None:
            parts[name] = value
    # Built without the document's own validator: it checks across teams, which
    # `_duplicate_principals` already did with pointers of its own.
    return PolicyDocument.model_construct(**parts), left_out


def _items_that_parse(annotation: Any, value: Any) -> Any:
    """The items of a list or mapping `value` that parse as the field's items; None otherwise."""
    origin, arguments = get_origin(annotation), get_args(annotation)
    if origin is list and isinstance(value, list):
        items = (_parsed(arguments[0], item) for item in value)
        return [item for item in items if item is not None]
    if origin is dict and isinstance(value, Mapping):
        key_type, value_type = arguments
        pairs = ((_parsed(key_type, k), _parsed(value_type, v)) for k, v in value.items())
        return {k: v for k, v in pairs if k is not None and v is not None}
    return None


def _parsed(annotation: Any, value: Any) -> Any:
    try:
        return _adapter(annotation).validate_python(value)
    except ValidationError:
        return None


@cache
def _adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)


def _team_names(raw: Any, document: PolicyDocument) -> Collection[str]:
    """The teams the policy defines, including those whose rules fail their schema (a grant
    to one of them is not a grant to an unknown team)."""
    teams = raw.get("teams") if isinstance(raw, Mapping) else None
    return {str(name) for name in teams} if isinstance(teams, Mapping) else document.teams.keys()


def _pointer(loc: Sequence[int | str]) -> str:
    # pydantic marks a dict key's own error with a trailing "[key]": point at the entry.
    return json_pointer(*[part for part in loc if part != "[key]"])


# What a pattern error means, by the field it is in (pydantic would print the regex).
_PATTERN_MESSAGES = {
    "principals": "must be an IAM role or user ARN, e.g. arn:aws:iam::123456789012:role/deployer",
    "admins": "must be an IAM role or user ARN, e.g. arn:aws:iam::123456789012:role/platform",
    "accounts": "must be a Cloudflare account id: 32 lowercase hexadecimal characters",
    "team": "must be a team name: lowercase letters, digits, '-' and '_', at most 63",
}


def _schema_message(error: Mapping[str, Any]) -> str:
    loc = [part for part in error["loc"] if part != "[key]"]
    if error["loc"] and error["loc"][-1] == "[key]" and loc[:1] == ["teams"] and len(loc) == 2:
        return (
            f"team name {str(loc[-1])!r} is invalid: use lowercase letters, digits, '-' and '_' "
            "(at most 63, starting with a letter or digit)"
        )
    if error["type"] == "string_pattern_mismatch":
        field = next((str(part) for part in reversed(loc) if isinstance(part, str)), "")
        if field in _PATTERN_MESSAGES:
            return _PATTERN_MESSAGES[field]
    return str(error["msg"])


def _duplicate_principals(
    raw: Mapping[str, Any], base: str, warnings: list[Problem]
) -> list[Problem]:
    """A principal belongs to one team; the raw document is read so each one gets a pointer."""
    teams = raw.get("teams")
    if not isinstance(teams, Mapping):
        return []
    errors: list[Problem] = []
    owners: dict[str, str] = {}
    for name, team in teams.items():
        principals = team.get("principals") if isinstance(team, Mapping) else None
        if not isinstance(principals, list):
            continue
        seen_here: set[str] = set()
        for index, arn in enumerate(principals):
            if not isinstance(arn, str):
                continue
            principal = normalise_principal(arn)
            pointer = base + json_pointer("teams", name, "principals", index)
            if principal in seen_here:
                warnings.append(Problem(f"{principal} is listed twice", pointer=pointer))
            elif principal in owners:
                errors.append(
                    Problem(
                        f"principal {principal} is already in team {owners[principal]!r}; a "
                        "principal belongs to one team",
                        pointer=pointer,
                    )
                )
            else:
                owners[principal] = str(name)
            seen_here.add(principal)
    return errors


def _unknown_teams(document: PolicyDocument, defined: Collection[str], base: str) -> list[Problem]:
    return [
        Problem(
            f"grant is for team {grant.team!r}, which the policy does not define",
            pointer=base + json_pointer("grants", index, "team"),
        )
        for index, grant in enumerate(document.grants)
        if grant.team not in defined
    ]


def _globs_matching_nothing(document: PolicyDocument, base: str) -> list[Problem]:
    problems: list[Problem] = []
    for name, team in document.teams.items():
        for field in ("scripts", "namespaces"):
            for index, pattern in enumerate(getattr(team, field)):
                if not _NAME_GLOB.fullmatch(pattern):
                    problems.append(
                        Problem(
                            f"{pattern!r} matches no {field[:-1]} name: names hold only letters, "
                            "digits, '-' and '_'",
                            pointer=base + json_pointer("teams", name, field, index),
                        )
                    )
        for index, pattern in enumerate(team.paths):
            if not pattern.startswith(("/", "*")) or "//" in pattern:
                problems.append(
                    Problem(
                        f"{pattern!r} matches no asset path: paths start with '/' and have no "
                        "empty segment",
                        pointer=base + json_pointer("teams", name, "paths", index),
                    )
                )
    return problems


def _quotas_against_budget(
    document: PolicyDocument, budget: int, base: str
) -> tuple[list[Problem], list[Problem]]:
    """Sessions are Cloudflare calls: the org's budget per 5 minutes caps every team."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    windows_per_budget = GLOBAL_WINDOW // MINUTE
    total = 0
    for name in document.teams:
        per_minute = document.limits_of(name).quotas.sessions_per_minute
        total += per_minute * windows_per_budget
        pointer = base + json_pointer("teams", name, "quotas", "sessions_per_minute")
        if per_minute > budget:
            errors.append(
                Problem(
                    f"team {name!r} may make {per_minute} sessions a minute, more than the org's "
                    f"whole Cloudflare budget of {budget} per 5 minutes",
                    pointer=pointer,
                )
            )
        elif per_minute * windows_per_budget > budget:
            warnings.append(
                Problem(
                    f"team {name!r} alone may spend the org's Cloudflare budget ({budget} per "
                    f"5 minutes) in under 5 minutes at {per_minute} sessions a minute",
                    pointer=pointer,
                )
            )
        warnings.extend(_deploy_calls_against_budget(document, name, budget, base))
    if total > budget and len(document.teams) > 1:
        warnings.append(
            Problem(
                f"together the teams may ask for {total} sessions per 5 minutes; the budget of "
                f"{budget} will refuse first (19021) when they all deploy at once",
                pointer=base + "/teams",
            )
        )
    return errors, warnings


def _deploy_calls_against_budget(
    document: PolicyDocument, name: str, budget: int, base: str
) -> list[Problem]:
    """Every deploy door call reaches Cloudflare too: one team must not be able to spend the
    org's whole budget on them."""
    per_minute = document.limits_of(name).quotas.deploy_calls_per_minute
    if per_minute * (GLOBAL_WINDOW // MINUTE) <= budget:
        return []
    return [
        Problem(
            f"team {name!r} may make {per_minute} deploy door calls a minute: alone it may spend "
            f"the org's Cloudflare budget ({budget} per 5 minutes) and stop every team",
            pointer=base + json_pointer("teams", name, "quotas", "deploy_calls_per_minute"),
        )
    ]


def _deploy_warnings(document: PolicyDocument, base: str) -> list[Problem]:
    warnings = deploy_rule_warnings(
        document.defaults.deploy, "every team (defaults)", base + "/defaults/deploy"
    )
    for name, team in document.teams.items():
        pointer = base + json_pointer("teams", name, "deploy")
        warnings.extend(deploy_rule_warnings(team.deploy, f"team {name!r}", pointer))
    return warnings


def _other_warnings(document: PolicyDocument, now: datetime, base: str) -> list[Problem]:
    warnings: list[Problem] = []
    team_principals = {
        normalise_principal(arn) for team in document.teams.values() for arn in team.principals
    }
    for index, arn in enumerate(document.admins):
        if normalise_principal(arn) in team_principals:
            warnings.append(
                Problem(
                    f"admin {arn} is also a team's caller; separate roles are safer",
                    pointer=base + json_pointer("admins", index),
                )
            )
    for name, team in document.teams.items():
        for field in ("accounts", "scripts"):
            if not getattr(team, field):
                warnings.append(
                    Problem(
                        f"team {name!r} lists no {field}: every request will be refused",
                        pointer=base + json_pointer("teams", name, field),
                    )
                )
    for index, grant in enumerate(document.grants):
        if not grant.active(now):
            warnings.append(
                Problem(
                    f"grant for team {grant.team!r} expired at {grant.expires_at.isoformat()}",
                    pointer=base + json_pointer("grants", index, "expires_at"),
                )
            )
    if document.kill_switch.engaged:
        warnings.append(
            Problem(
                "the kill switch is engaged: the session door refuses every request (19013)",
                pointer=base + "/kill_switch/engaged",
            )
        )
    return warnings


def describe_changes(before: PolicyDocument | None, after: PolicyDocument) -> list[str]:
    """A short human summary of what publishing `after` over `before` changes."""
    if before is None:
        return [f"first policy: {len(after.teams)} teams"]
    changes: list[str] = []
    old_teams, new_teams = before.teams, after.teams
    changes.extend(f"team {name!r} added" for name in new_teams if name not in old_teams)
    changes.extend(f"team {name!r} removed" for name in old_teams if name not in new_teams)
    for name in new_teams.keys() & old_teams.keys():
        old = old_teams[name].model_dump(mode="json")
        new = new_teams[name].model_dump(mode="json")
        changes.extend(
            f"team {name!r}: {field} {_short(old.get(field))} → {_short(new.get(field))}"
            for field in sorted(new.keys() | old.keys())
            if old.get(field) != new.get(field)
        )
    for field in ("admins", "defaults", "kill_switch"):
        old_value = _dump(getattr(before, field))
        new_value = _dump(getattr(after, field))
        if old_value != new_value:
            changes.append(f"{field}: {_short(old_value)} → {_short(new_value)}")
    old_grants = [_dump(g) for g in before.grants]
    new_grants = [_dump(g) for g in after.grants]
    added = sum(1 for grant in new_grants if grant not in old_grants)
    removed = sum(1 for grant in old_grants if grant not in new_grants)
    if added or removed:
        changes.append(f"grants: {added} added, {removed} removed")
    return sorted(changes) or ["no change"]


def _dump(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def operational_warnings(
    before: PolicyDocument | None, after: PolicyDocument, now: datetime
) -> list[Problem]:
    """Suspensions, grants and the kill switch live in the document, so publishing a file that
    was edited before they were set undoes them: say so, loudly, before and after a publish."""
    if before is None:
        return []
    warnings: list[Problem] = []
    if before.kill_switch.engaged and not after.kill_switch.engaged:
        warnings.append(
            Problem("this publish releases the engaged kill switch", pointer="/policy/kill_switch")
        )
    for name, team in before.teams.items():
        if team.suspended and name in after.teams and not after.teams[name].suspended:
            warnings.append(
                Problem(
                    f"this publish resumes suspended team {name!r}",
                    pointer="/policy" + json_pointer("teams", name, "suspended"),
                )
            )
    kept = {grant.model_dump_json() for grant in after.grants}
    dropped = [g for g in before.grants if g.active(now) and g.model_dump_json() not in kept]
    warnings.extend(
        Problem(
            f"this publish drops the active grant for team {grant.team!r} ({grant.reason})",
            pointer="/policy/grants",
        )
        for grant in dropped
    )
    return warnings
