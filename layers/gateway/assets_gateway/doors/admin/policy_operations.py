"""The policy itself: read it and its history, validate a proposal, publish it (a rollback is a
publish of an older version's document), and replay recorded decisions against a proposal."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING

from assets_gateway.domain.envelope import Reply, success_reply
from assets_gateway.domain.errors import (
    MalformedRequest,
    PolicyVersionConflict,
    PreconditionRequired,
)
from assets_gateway.domain.policy import moment
from assets_gateway.domain.policy_check import describe_changes, operational_warnings
from assets_gateway.domain.simulation import simulate
from assets_gateway.doors.admin.publishing import (
    Publisher,
    change_reply,
    comparable,
    etag,
    problem,
)
from assets_gateway.doors.admin.request import (
    AdminRequest,
    Operation,
    PublishBody,
    SimulateBody,
    ValidateBody,
    parse_body,
)
from assets_gateway.ports.policy_versions import MAX_VERSIONS_PER_PAGE

if TYPE_CHECKING:
    from assets_gateway.ports.audit import AdminAuditRecord
    from assets_gateway.ports.recorded_decisions import RecordedDecisions

DEFAULT_SIMULATION_PERIOD = timedelta(hours=24)


class PolicyOperations:
    def __init__(
        self,
        publisher: Publisher,
        decisions: RecordedDecisions,
        *,
        retention: timedelta,
        now: Callable[[], float],
    ) -> None:
        self._publisher = publisher
        self._decisions = decisions
        self._retention = retention
        self._now = now

    def get(self, request: AdminRequest, record: AdminAuditRecord) -> Reply:
        version = request.query.get("version")
        published = (
            self._publisher.version(_version_number(version))
            if version
            else self._publisher.current()
        )
        record.policy_version = published.version
        return success_reply(published.as_result(), headers=etag(published.version))

    def version(self, version: str) -> Operation:
        def operation(request: AdminRequest, record: AdminAuditRecord) -> Reply:
            published = self._publisher.version(_version_number(version))
            record.policy_version = published.version
            return success_reply(published.as_result(), headers=etag(published.version))

        return operation

    def versions(self, request: AdminRequest, record: AdminAuditRecord) -> Reply:
        current = self._publisher.current()
        limit = _bounded_int(request.query.get("limit"), "limit", 20, 1, MAX_VERSIONS_PER_PAGE)
        before = _bounded_int(request.query.get("before"), "before", current.version + 1, 1, None)
        found = self._publisher.versions.versions(before=before, limit=limit)
        result = {"current": current.version, "versions": [p.summary() for p in found]}
        return success_reply(result)

    def validate(self, request: AdminRequest, record: AdminAuditRecord) -> Reply:
        body = parse_body(ValidateBody, request.body)
        validation = self._publisher.validated(body.policy)
        before = comparable(self._publisher.versions.current())
        assert validation.document is not None
        undone = operational_warnings(before, validation.document, moment(self._now()))
        result = {
            "valid": True,
            "warnings": [problem(w) for w in (*undone, *validation.warnings)],
            "changes": describe_changes(before, validation.document),
        }
        return success_reply(result)

    def publish(self, request: AdminRequest, record: AdminAuditRecord) -> Reply:
        expected = _if_match(request.headers)
        body = parse_body(PublishBody, request.body)
        record.reason = body.reason
        validation = self._publisher.validated(body.policy)
        current = self._publisher.versions.current()
        if (current.version if current else 0) != expected:
            raise PolicyVersionConflict(
                f"If-Match names version {expected} but the current policy is version "
                f"{current.version if current else 0}; read it and apply your change to it"
            )
        assert validation.document is not None
        undone = operational_warnings(comparable(current), validation.document, moment(self._now()))
        publication = self._publisher.publish(
            validation.document, current, by=request.principal, reason=body.reason
        )
        published = publication.policy
        result = {
            **published.summary(),
            "changes": list(published.changes) if publication.changed else [],
            "warnings": [problem(w) for w in (*undone, *validation.warnings)],
        }
        return change_reply(
            publication,
            record,
            result,
            unchanged=f"the policy is the same as version {published.version}",
            headers=etag(published.version),
        )

    def simulate(self, request: AdminRequest, record: AdminAuditRecord) -> Reply:
        body = parse_body(SimulateBody, request.body)
        validation = self._publisher.validated(body.policy)
        assert validation.document is not None
        now = moment(self._now())
        until = body.until or now
        since = body.since or until - DEFAULT_SIMULATION_PERIOD
        if since >= until:
            raise MalformedRequest("since must be before until", pointer="/since")
        if since < now - self._retention:
            raise MalformedRequest(
                f"decisions are kept {self._retention.days} days; since must be after "
                f"{(now - self._retention).isoformat()}",
                pointer="/since",
            )
        decisions, truncated = self._decisions.between(since, until)
        report = simulate(validation.document, decisions)
        result = {
            "period": {"since": since.isoformat(), "until": until.isoformat()},
            "truncated": truncated,
            **report,
        }
        return success_reply(result)


def _if_match(headers: Mapping[str, str]) -> int:
    raw = headers.get("if-match")
    if raw is None:
        raise PreconditionRequired(
            "send If-Match with the version you are replacing (0 when none is published), so a "
            "publish never overwrites a change you have not seen"
        )
    value = raw.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise MalformedRequest("If-Match must be a policy version number", pointer="/If-Match")
    return int(value)


def _version_number(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise MalformedRequest("a policy version is a positive number", pointer="/version")
    return int(raw)


def _bounded_int(raw: str | None, name: str, default: int, low: int, high: int | None) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
        bound = f"{low}..{high}" if high is not None else f"at least {low}"
        raise MalformedRequest(f"{name} must be a number, {bound}", pointer=f"/{name}")
    return int(raw)
