"""The deploy policy (pure): what a team's Worker uploads, deployments, script settings and
subdomain changes may do, and every reason one is refused.

The rules live in the policy document under `defaults.deploy` and each `teams.<t>.deploy`
(`DeployRules`, every field optional); `effective_deploy_rules` resolves a team's rules: the
team's value, else the document's default, else the built-in one. `resources` merges per binding
type: a team's globs for a type replace the default's for that type, the default's other types
still apply (a team drops one with an empty list).

The judges return every problem, not only the first, each naming the team, the binding and what
is allowed, with a JSON pointer into the judged body when there is one; the deploy door raises
`DeployDenied` (19062) with them. Malformed bodies raise `InvalidDeployRequest` (19064).

Resource bindings are judged by their resource identifier: the first of the type's resource
fields (`worker_metadata.BINDING_TYPES`) present in the binding (`namespace_id`, `bucket_name`,
`service`…), except `durable_object_namespace`, whose identifier is the Worker that hosts the
class (`script_name`, else `namespace_id`): its `class_name` names code, not a resource. A
binding that names none of its resource fields is matched as the empty name, which only `*`
matches. Bindings to the team's own scripts (`service`, and `durable_object_namespace` or
`workflow` with a `script_name`) are allowed whatever `resources` says. A Durable Object binding
without `script_name` or `namespace_id` binds a class of the uploaded Worker itself: it reaches
nothing outside the Worker, and a new class comes only with a migration, which the `migrations`
rule governs, so it is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, ValidationError
from pydantic_core import PydanticCustomError

from assets_gateway.domain.errors import GatewayError, InvalidDeployRequest, Problem
from assets_gateway.domain.globs import Glob, GlobSet
from assets_gateway.domain.request_body import parse_json_body
from assets_gateway.domain.worker_metadata import (
    BINDING_TYPES,
    BindingKind,
    BindingSummary,
    WorkerMetadata,
)
from assets_gateway.domain.worker_sizes import MAX_INFLATED_BYTES, MIB
from assets_gateway_common.json_pointer import json_pointer

if TYPE_CHECKING:  # the session and S3 functions load this module, never the upload's parser
    from assets_gateway.domain.worker_upload import UploadSummary

# Binding types a team may attach when neither its policy nor the defaults say otherwise.
BUILT_IN_BINDINGS = ("assets", "plain_text", "json", "secret_text", "version_metadata")
# The kinds `bindings` lists; RESOURCE types go under `resources`, INHERIT is always allowed.
_LISTED_KINDS = frozenset({BindingKind.VALUE, BindingKind.PLATFORM, BindingKind.MODULE})
# The identifier fields of a type whose first resource field is not what it binds to.
_IDENTIFIERS = {"durable_object_namespace": ("script_name", "namespace_id")}
# Types that may name a script of the team's own instead of a resource `resources` lists.
_OWN_SCRIPT_FIELDS = {
    "service": "service",
    "durable_object_namespace": "script_name",
    "workflow": "script_name",
}
# How close to 100 the percentages of a deployment must add up.
PERCENTAGE_TOLERANCE = 1e-9


def _listed_binding_type(name: str) -> str:
    kind = BINDING_TYPES.get(name, (BindingKind.UNKNOWN, ()))[0]
    if kind is BindingKind.RESOURCE:
        raise PydanticCustomError(
            "resource_binding_in_bindings",
            "{name} is a resource binding: list the resources it may name under resources.{name}",
            {"name": name},
        )
    if kind is BindingKind.INHERIT:
        raise PydanticCustomError(
            "inherit_binding_in_bindings",
            "inherit bindings keep the previous version's binding and are always allowed: "
            "remove it",
        )
    if kind not in _LISTED_KINDS:
        raise PydanticCustomError(
            "unknown_binding_type",
            "{name} is not a binding type the gateway knows; unknown types pass only where "
            "unsafe is true",
            {"name": name},
        )
    return name


def _resource_binding_type(name: str) -> str:
    kind = BINDING_TYPES.get(name, (BindingKind.UNKNOWN, ()))[0]
    if kind is BindingKind.RESOURCE:
        return name
    if kind in _LISTED_KINDS:
        raise PydanticCustomError(
            "value_binding_in_resources",
            "{name} names no resource: list it under bindings",
            {"name": name},
        )
    raise PydanticCustomError(
        "unknown_resource_type",
        "{name} is not a resource binding type the gateway knows",
        {"name": name},
    )


ListedBindingType = Annotated[str, AfterValidator(_listed_binding_type)]
ResourceBindingType = Annotated[str, AfterValidator(_resource_binding_type)]


class DeployRules(BaseModel):
    """A team's (or the defaults') deploy rules; None inherits (the defaults, then built-ins)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Binding types that name no resource (values, platform services, service-worker modules).
    bindings: list[ListedBindingType] | None = None
    # Resource binding type → globs of the resource identifiers its bindings may name.
    resources: dict[ResourceBindingType, list[Glob]] | None = None
    # Scripts outside the team that may receive its tail events.
    tail_consumers: list[Glob] | None = None
    logpush: StrictBool | None = None
    migrations: StrictBool | None = None  # Durable Object migrations
    unsafe: StrictBool | None = None  # unknown binding types and metadata fields
    workers_dev: StrictBool | None = None  # may enable the workers.dev route
    preview_urls: StrictBool | None = None  # may enable preview URLs
    gradual_deployments: StrictBool | None = None  # a deployment may split traffic
    max_script_bytes: int | None = Field(default=None, ge=0, le=MAX_INFLATED_BYTES)


@dataclass(frozen=True)
class EffectiveDeployRules:
    """A team's deploy rules with every value resolved."""

    bindings: tuple[str, ...]
    resources: Mapping[str, tuple[str, ...]]
    tail_consumers: tuple[str, ...]
    logpush: bool
    migrations: bool
    unsafe: bool
    workers_dev: bool
    preview_urls: bool
    gradual_deployments: bool
    max_script_bytes: int

    @cached_property
    def resource_globs(self) -> Mapping[str, GlobSet]:
        return {kind: GlobSet(globs) for kind, globs in self.resources.items()}

    @cached_property
    def tail_consumer_globs(self) -> GlobSet:
        return GlobSet(self.tail_consumers)

    def as_dict(self) -> dict[str, Any]:
        """For an admin's explain: plain JSON values."""
        return {
            "bindings": list(self.bindings),
            "resources": {kind: list(globs) for kind, globs in self.resources.items()},
            "tail_consumers": list(self.tail_consumers),
            "logpush": self.logpush,
            "migrations": self.migrations,
            "unsafe": self.unsafe,
            "workers_dev": self.workers_dev,
            "preview_urls": self.preview_urls,
            "gradual_deployments": self.gradual_deployments,
            "max_script_bytes": self.max_script_bytes,
        }


BUILT_IN_DEPLOY_RULES = EffectiveDeployRules(
    bindings=BUILT_IN_BINDINGS,
    resources={},
    tail_consumers=(),
    logpush=False,
    migrations=False,
    unsafe=False,
    workers_dev=False,
    preview_urls=False,
    gradual_deployments=True,
    max_script_bytes=MAX_INFLATED_BYTES,
)
_FLAGS = ("logpush", "migrations", "unsafe", "workers_dev", "preview_urls", "gradual_deployments")


def effective_deploy_rules(own: DeployRules, default: DeployRules) -> EffectiveDeployRules:
    """The team's value, else the document's default, else the built-in one; `resources`
    per binding type (the team's globs for a type replace the default's for that type)."""

    def first(name: str) -> Any:
        for rules in (own, default):
            value = getattr(rules, name)
            if value is not None:
                return value
        return getattr(BUILT_IN_DEPLOY_RULES, name)

    resources = {**(default.resources or {}), **(own.resources or {})}
    return EffectiveDeployRules(
        bindings=tuple(first("bindings")),
        resources={kind: tuple(globs) for kind, globs in resources.items()},
        tail_consumers=tuple(first("tail_consumers")),
        max_script_bytes=first("max_script_bytes"),
        **{name: first(name) for name in _FLAGS},
    )


# -- Worker uploads (script PUT, version POST) ------------------------------------------------


def upload_reasons(
    team_name: str, rules: EffectiveDeployRules, own_scripts: GlobSet, summary: UploadSummary
) -> list[Problem]:
    """Every reason the team may not upload this Worker (pointers into the metadata part)."""
    judge = _Bindings(team_name, rules, own_scripts)
    problems = (judge.problem(index, binding) for index, binding in enumerate(summary.bindings))
    reasons = [problem for problem in problems if problem is not None]
    if summary.unknown_fields and not rules.unsafe:
        reasons.extend(
            Problem(
                f"team {team_name!r} may not send the metadata field {name!r}, which the gateway "
                "does not know (unsafe metadata is off for this team)",
                pointer=json_pointer(name),
            )
            for name in summary.unknown_fields
        )
    reasons.extend(_tail_consumer_reasons(team_name, rules, own_scripts, summary.tail_consumers))
    if summary.logpush and not rules.logpush:
        reasons.append(_flag_off(team_name, "turn on logpush", "logpush"))
    if summary.migrations and not rules.migrations:
        reasons.append(_flag_off(team_name, "run Durable Object migrations", "migrations"))
    if summary.script_bytes > rules.max_script_bytes:
        reasons.append(
            Problem(
                f"the Worker's modules total {_size(summary.script_bytes)}; team {team_name!r} "
                f"may upload at most {_size(rules.max_script_bytes)}"
            )
        )
    return reasons


@dataclass(frozen=True)
class _Bindings:
    """Judges one upload's bindings for a team."""

    team_name: str
    rules: EffectiveDeployRules
    own_scripts: GlobSet

    def problem(self, index: int, binding: BindingSummary) -> Problem | None:
        team_name, rules, what = self.team_name, self.rules, _described(binding)
        if binding.kind is BindingKind.INHERIT:
            # It keeps the binding the previous version had, judged when that version was
            # uploaded; `keep_bindings` does the same by type, so neither is judged here.
            return None
        if binding.kind is BindingKind.UNKNOWN:
            if rules.unsafe:
                return None
            return Problem(
                f"team {team_name!r} may not attach {what}: the gateway does not know the type "
                "(unsafe bindings are off for this team)",
                pointer=json_pointer("bindings", index, "type"),
            )
        if binding.kind is not BindingKind.RESOURCE:
            if binding.type in rules.bindings:
                return None
            return Problem(
                f"team {team_name!r} may not attach {what} (allowed types: "
                f"{', '.join(rules.bindings) or 'none'})",
                pointer=json_pointer("bindings", index, "type"),
            )
        return self._resource_problem(index, binding)

    def _resource_problem(self, index: int, binding: BindingSummary) -> Problem | None:
        fields = dict(binding.resources)
        own_field = _OWN_SCRIPT_FIELDS.get(binding.type)
        if own_field in fields and self.own_scripts.matches(fields[own_field]):
            return None  # a script of the team's own
        field, identifier = _identifier(binding.type, fields)
        if field is None and binding.type == "durable_object_namespace":
            return None  # a class of the uploaded Worker itself (see the module's docstring)
        globs = self.rules.resource_globs.get(binding.type)
        if globs is not None and globs.matches(identifier):
            return None
        named = f"{field} {identifier!r}" if field is not None else "no resource"
        allowed = ", ".join(self.rules.resources.get(binding.type, ())) or "none"
        if own_field is not None:
            allowed += "; or a script of the team's own"
        pointer = json_pointer("bindings", index, *(field.split("/") if field else ["type"]))
        return Problem(
            f"team {self.team_name!r} may not attach {_described(binding)} naming {named} "
            f"(allowed {binding.type} resources: {allowed})",
            pointer=pointer,
        )


def _described(binding: BindingSummary) -> str:
    return f"binding {binding.name!r} ({binding.type})"


def _identifier(binding_type: str, fields: Mapping[str, str]) -> tuple[str | None, str]:
    """The resource field that identifies what the binding reaches, and its value."""
    order = _IDENTIFIERS.get(binding_type, BINDING_TYPES[binding_type][1])
    for field in order:
        if field in fields:
            return field, fields[field]
    return None, ""


def _tail_consumer_reasons(
    team_name: str,
    rules: EffectiveDeployRules,
    own_scripts: GlobSet,
    services: Sequence[str],
    field: str | None = None,
) -> list[Problem]:
    """A tail consumer must be a script of the team's own or one the rules list; `field` names
    the list the services came from, for the pointers."""
    return [
        Problem(
            f"team {team_name!r} may not send its tail events to script {service!r}: not a "
            f"script of the team's own (allowed outside it: "
            f"{', '.join(rules.tail_consumers) or 'none'})",
            pointer=None if field is None else json_pointer(field, index, "service"),
        )
        for index, service in enumerate(services)
        if not own_scripts.matches(service) and not rules.tail_consumer_globs.matches(service)
    ]


def _flag_off(team_name: str, action: str, rule: str, pointer: str | None = None) -> Problem:
    return Problem(
        f"team {team_name!r} may not {action} (deploy rule {rule} is off for this team)",
        pointer=json_pointer(rule) if pointer is None else pointer,
    )


def _size(count: int) -> str:
    """Bytes for a person: the exact count, and MiB when it is large."""
    return f"{count} bytes ({count / MIB:.1f} MiB)" if count >= MIB else f"{count} bytes"


# -- deployments (POST …/deployments) ---------------------------------------------------------


@dataclass(frozen=True)
class DeploymentVersion:
    version_id: str
    percentage: float


@dataclass(frozen=True)
class DeploymentRequest:
    strategy: str
    versions: tuple[DeploymentVersion, ...]

    @property
    def splits_traffic(self) -> bool:
        return len(self.versions) > 1 or any(v.percentage < 100 for v in self.versions)


class _Version(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, frozen=True, defer_build=True)

    version_id: str = Field(min_length=1)
    percentage: float = Field(ge=0, le=100)


class _Deployment(BaseModel):
    """The body wrangler sends (`annotations`, `code_update_strategy` and others kept)."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True, defer_build=True)

    strategy: str
    versions: list[_Version] = Field(min_length=1, max_length=2)


def build_request_models() -> None:
    """Builds the validators of the deploy requests' models now. They are deferred at import
    (`defer_build`): the session and S3 functions load this module for the policy and never
    validate a deploy request. The deploy function calls this at init, so that the work is done
    once, in SnapStart's snapshot, rather than by its first request."""
    for model in (WorkerMetadata, _Deployment):  # the nested models are built into theirs
        model.model_rebuild(force=True)


def parse_json_object(body: bytes, what: str) -> dict[str, Any]:
    """The body as a JSON object, or `InvalidDeployRequest` naming `what` it is."""
    try:
        document = parse_json_body(body)
    except GatewayError as error:  # not UTF-8 JSON, a repeated key…
        subject = f"the {what} body"
        message = error.message
        message = (
            subject + message.removeprefix("request body")
            if message.startswith("request body")
            else f"{subject}: {message}"
        )
        raise InvalidDeployRequest(message, pointer=error.pointer) from None
    if not isinstance(document, dict):
        raise InvalidDeployRequest(f"the {what} body must be a JSON object", pointer="")
    return document


def parse_deployment(body: bytes) -> DeploymentRequest:
    """`{"strategy": "percentage", "versions": [{version_id, percentage}, …]}` checked whole."""
    return deployment_of(parse_json_object(body, "deployment"))


def deployment_of(document: Mapping[str, Any]) -> DeploymentRequest:
    """A deployment body already read as a JSON object, checked whole."""
    try:
        parsed = _Deployment.model_validate(document)
    except ValidationError as error:
        raise _invalid(error, "deployment") from None
    problems: list[Problem] = []
    if parsed.strategy != "percentage":
        problems.append(
            Problem(
                f"deployment strategy {parsed.strategy!r} is unknown: Cloudflare's only one is "
                "'percentage'",
                pointer="/strategy",
            )
        )
    seen: set[str] = set()
    for index, version in enumerate(parsed.versions):
        if version.version_id in seen:
            problems.append(
                Problem(
                    f"version {version.version_id!r} is listed twice",
                    pointer=json_pointer("versions", index, "version_id"),
                )
            )
        seen.add(version.version_id)
    total = math.fsum(version.percentage for version in parsed.versions)
    if abs(total - 100) > PERCENTAGE_TOLERANCE:
        problems.append(
            Problem(f"the versions' percentages add up to {total:g}, not 100", pointer="/versions")
        )
    if problems:
        raise InvalidDeployRequest(
            problems[0].message, pointer=problems[0].pointer, reasons=problems
        )
    return DeploymentRequest(
        strategy=parsed.strategy,
        versions=tuple(DeploymentVersion(v.version_id, v.percentage) for v in parsed.versions),
    )


def _invalid(error: ValidationError, what: str) -> InvalidDeployRequest:
    problems = [
        Problem(
            f"{what} {_where(e['loc'])}: {e['msg']}",
            pointer=json_pointer(*e["loc"]),
        )
        for e in error.errors(include_url=False, include_input=False)
    ]
    return InvalidDeployRequest(problems[0].message, pointer=problems[0].pointer, reasons=problems)


def _where(loc: Sequence[int | str]) -> str:
    """`versions[1].percentage` for a pydantic location."""
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
    return text.lstrip(".") or "body"


def deployment_reasons(
    team_name: str, rules: EffectiveDeployRules, request: DeploymentRequest
) -> list[Problem]:
    if not request.splits_traffic or rules.gradual_deployments:
        return []
    split = ", ".join(f"{v.version_id} {v.percentage:g}%" for v in request.versions)
    return [
        Problem(
            f"team {team_name!r} may not split traffic between versions ({split}): gradual "
            "deployments are off for this team; deploy one version at 100%",
            pointer="/versions",
        )
    ]


# -- script settings (PATCH …/script-settings) and the subdomain (POST …/subdomain) ----------


def script_settings_reasons(
    team_name: str,
    rules: EffectiveDeployRules,
    own_scripts: GlobSet,
    settings: Mapping[str, Any],
) -> list[Problem]:
    """`logpush` and `tail_consumers` judged as in an upload; other settings pass."""
    logpush = _flag(settings, "logpush", "script settings")
    consumers = settings.get("tail_consumers")
    if consumers is not None and not isinstance(consumers, list):
        raise InvalidDeployRequest(
            "script settings tail_consumers must be a list of {service, …} objects",
            pointer="/tail_consumers",
        )
    services: list[str] = []
    for index, consumer in enumerate(consumers or ()):
        service = consumer.get("service") if isinstance(consumer, dict) else None
        if not isinstance(service, str) or not service:
            raise InvalidDeployRequest(
                f"script settings tail_consumers[{index}] must be an object with a service name",
                pointer=json_pointer("tail_consumers", index, "service"),
            )
        services.append(service)
    reasons: list[Problem] = []
    if logpush and not rules.logpush:
        reasons.append(_flag_off(team_name, "turn on logpush", "logpush"))
    reasons.extend(
        _tail_consumer_reasons(team_name, rules, own_scripts, services, "tail_consumers")
    )
    return reasons


def subdomain_reasons(
    team_name: str, rules: EffectiveDeployRules, body: Mapping[str, Any]
) -> list[Problem]:
    """Enabling the workers.dev route needs `workers_dev`, enabling preview URLs needs
    `preview_urls`; turning either off is always allowed."""
    enabled = _flag(body, "enabled", "subdomain", required=True)
    previews = _flag(body, "previews_enabled", "subdomain")
    reasons: list[Problem] = []
    if enabled and not rules.workers_dev:
        reasons.append(
            _flag_off(team_name, "enable the Worker's workers.dev route", "workers_dev", "/enabled")
        )
    if previews and not rules.preview_urls:
        reasons.append(
            _flag_off(team_name, "enable preview URLs", "preview_urls", "/previews_enabled")
        )
    return reasons


def _flag(body: Mapping[str, Any], name: str, what: str, *, required: bool = False) -> bool:
    """A boolean field; an optional one may be absent or null (left as it is)."""
    value = body.get(name)
    if value is None and not required:
        return False
    if not isinstance(value, bool):
        raise InvalidDeployRequest(f"{what} {name} must be true or false", pointer=f"/{name}")
    return value


# -- what a policy's reviewer should look at twice -------------------------------------------


def deploy_rule_warnings(rules: DeployRules, whose: str, base: str) -> list[Problem]:
    """Warnings for one `deploy` section as written (`whose`: "team 'web'", "every team";
    `base`: the section's pointer): globs that open a resource type or the team's tail events
    to everything, and unsafe uploads."""
    warnings = [
        Problem(
            f"{whose} may bind any {kind} of the account ({glob!r}), other teams' included",
            pointer=base + json_pointer("resources", kind, index),
        )
        for kind, globs in (rules.resources or {}).items()
        for index, glob in enumerate(globs)
        if _matches_everything(glob)
    ]
    warnings.extend(
        Problem(
            f"{whose} may send its tail events (logs, request URLs and headers) to any script "
            f"({glob!r}), other teams' included",
            pointer=base + json_pointer("tail_consumers", index),
        )
        for index, glob in enumerate(rules.tail_consumers or ())
        if _matches_everything(glob)
    )
    if rules.unsafe:
        warnings.append(
            Problem(
                f"{whose} may upload binding types and metadata fields the gateway does not know; "
                "they reach Cloudflare unchecked",
                pointer=base + "/unsafe",
            )
        )
    return warnings


def _matches_everything(glob: str) -> bool:
    return set(glob) == {"*"}
