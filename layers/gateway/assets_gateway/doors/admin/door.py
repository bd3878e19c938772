"""The door's one entry point: every admin route is authorised, run and audited here."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from assets_gateway.domain.envelope import Reply, error_reply
from assets_gateway.domain.errors import AdminOnly, GatewayError, InternalError
from assets_gateway.domain.identity import normalise_principal
from assets_gateway.doors.admin.explain import Explanations
from assets_gateway.doors.admin.policy_operations import PolicyOperations
from assets_gateway.doors.admin.publishing import Publisher, parsed
from assets_gateway.doors.admin.request import AdminRequest, Operation
from assets_gateway.doors.admin.team_operations import TeamOperations
from assets_gateway.ports.audit import AdminAuditRecord

if TYPE_CHECKING:
    from assets_gateway.doors.session import SessionService
    from assets_gateway.ports.audit import AdminAuditSink
    from assets_gateway.ports.policy_versions import PolicyVersions
    from assets_gateway.ports.quota_usage import QuotaUsage
    from assets_gateway.ports.recorded_decisions import RecordedDecisions


class AdminService:
    def __init__(
        self,
        *,
        history: PolicyVersions,
        counters: QuotaUsage,
        decisions: RecordedDecisions,
        sessions: SessionService,
        admins: Sequence[str],
        global_budget: int,
        retention_days: int,
        audit: AdminAuditSink,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._history = history
        self._admins = frozenset(normalise_principal(arn) for arn in admins)
        self._audit = audit
        publisher = Publisher(history, global_budget=global_budget, now=now)
        policy = PolicyOperations(
            publisher, decisions, retention=timedelta(days=retention_days), now=now
        )
        teams = TeamOperations(publisher, counters, now=now)
        # The operations the routes hand to `handle`, by job.
        self.get_policy = policy.get
        self.policy_version = policy.version
        self.versions = policy.versions
        self.validate = policy.validate
        self.publish = policy.publish
        self.simulate = policy.simulate
        self.explain = Explanations(publisher, sessions, now=now).explain
        self.usage = teams.usage
        self.reset_usage = teams.reset_usage
        self.grant = teams.grant
        self.set_suspended = teams.set_suspended
        self.set_kill_switch = teams.set_kill_switch

    def handle(
        self, action: str, request: AdminRequest, operation: Operation, *, team: str | None = None
    ) -> Reply:
        """Authorise, run, audit: every admin route goes through here."""
        record = AdminAuditRecord(
            request_id=request.request_id, principal=request.principal, action=action, team=team
        )
        try:
            self._authorise(request.principal)
            reply = operation(request, record)
        except GatewayError as error:
            record.code, record.message = error.code, error.message
            reply = error_reply(error, request_id=request.request_id)
        except Exception:
            # The handler answers a clean 500 envelope; the attempt is still audited.
            record.code = InternalError.code
            self._audit.record(record)
            raise
        else:
            record.outcome = "done"
        record.status = reply.status
        self._audit.record(record)
        return reply

    def _authorise(self, principal: str) -> None:
        if normalise_principal(principal) in self._admins:
            return
        current = self._history.current()
        if current is not None and parsed(current).is_admin(principal):
            return
        raise AdminOnly(f"{normalise_principal(principal)} is not an admin of the assets gateway")
