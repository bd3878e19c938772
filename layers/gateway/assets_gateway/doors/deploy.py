"""The pipeline of the deploy door: the calls `wrangler deploy`, `wrangler versions upload`,
`versions deploy` and `rollback` make after the upload session, each governed like a session:

    identifiers → body bound → the caller's team → the team's accounts and scripts → the deploy
    policy over what the call would change → quotas → the org token → Cloudflare → the answer,
    with one audit record whatever happens.

Reads are judged by the allow-list alone. Writes are judged by what they carry: a Worker upload
by its metadata part (bindings, tail consumers, logpush, migrations, size), a deployment by its
versions and split, script settings by their logpush and tail consumers, the subdomain by what
it enables. What is forwarded is exactly the bytes that were judged. Every forwarded call counts
in the org's Cloudflare budget and the team's `deploy-calls-minute`; uploads and deployments
also in its deploy quotas.

Pure: everything outside goes through the ports it is given, so it imports only domain and
ports (and the steps it shares with the session door).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from assets_gateway.domain.deploy_decisions import DeployCall, JudgedDeploy, deploy_reasons
from assets_gateway.domain.deploy_policy import deployment_of, parse_json_object
from assets_gateway.domain.envelope import Reply, error_reply, success_reply
from assets_gateway.domain.errors import (
    DeployDenied,
    DeployQuotaExceeded,
    GatewayError,
    InvalidDeployRequest,
    PolicyDenied,
    QuotaExceeded,
    WorkerUploadTooLarge,
)
from assets_gateway.domain.policy import SessionTarget, access_reasons, moment
from assets_gateway.domain.quota import Charge, Limit
from assets_gateway.domain.simulation import RecordedDecision
from assets_gateway.domain.worker_upload import UploadLimits, WorkerUpload, read_worker_upload
from assets_gateway.doors.gate import (
    OUTCOME_OF_ERROR,
    UpstreamCalls,
    admitted_team,
    audit_record,
    back_off,
    call_with_org_token,
    check_account,
    check_target,
    refusal,
    team_quota_headers,
)
from assets_gateway.ports.audit import AuditRecord, AuditSink
from assets_gateway.ports.deploys import DeployRequest, DeployResult
from assets_gateway.ports.policy_source import PolicySource
from assets_gateway.ports.quota import QuotaGate, Ticket
from assets_gateway.ports.recorded_decisions import DecisionRecorder
from assets_gateway.ports.sessions import Outcome
from assets_gateway.ports.token import TokenSource
from assets_gateway.ports.upstream import UpstreamCall, UpstreamForwarder

# A deployment, script settings or subdomain body is a few hundred bytes of JSON.
MAX_JSON_BODY_BYTES = 64 * 1024

_WHAT: dict[DeployCall, str] = {
    DeployCall.WORKER_UPLOAD: "Worker upload",
    DeployCall.DEPLOYMENT: "deployment",
    DeployCall.SCRIPT_SETTINGS: "change of script settings",
    DeployCall.SUBDOMAIN: "change of the workers.dev route",
}


@dataclass
class _Progress:
    """What one call has established so far, for the answer's headers and the refund."""

    team: str | None = None
    limits: Sequence[Limit] = ()
    ticket: Ticket | None = None
    judged: JudgedDeploy | None = None


class DeployService:
    def __init__(
        self,
        *,
        policies: PolicySource,
        quotas: QuotaGate,
        tokens: TokenSource,
        upstream: UpstreamForwarder,
        audit: AuditSink,
        max_request_body_bytes: int,
        decisions: DecisionRecorder | None = None,
        now: Callable[[], float] = time.time,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._decisions = decisions
        self._policies = policies
        self._quotas = quotas
        self._tokens = tokens
        self._upstream = upstream
        self._audit = audit
        self._max_body = max_request_body_bytes
        self._now = now
        self._timer = timer

    def handle(self, request: DeployRequest) -> DeployResult:
        started = self._timer()
        record = audit_record(request.request_id, request.caller, None)
        record.account_id, record.script_name = request.account_id, request.script_name
        record.namespace, record.route = request.namespace, request.route
        progress = _Progress()
        try:
            reply, outcome = self._run(request, record, progress)
        except GatewayError as error:
            if progress.ticket is not None:
                self._quotas.refund(progress.ticket)
            reply, outcome = refusal(
                error,
                record,
                request.request_id,
                lambda: team_quota_headers(
                    self._quotas, progress.team, progress.limits, self._now()
                ),
            )
        except Exception:
            # The handler answers a clean 500 envelope; the charge is given back and the call
            # is still audited.
            if progress.ticket is not None:
                self._quotas.refund(progress.ticket)
            record.latency_ms = round((self._timer() - started) * 1000, 3)
            self._audit.record(record)
            raise
        record.latency_ms = round((self._timer() - started) * 1000, 3)
        record.outcome, record.status = outcome.value, reply.status
        self._audit.record(record)
        if request.kind is not DeployCall.READ:
            self._remember(request, record, progress)
        return DeployResult(reply, outcome, record.team)

    def verify(self, request: DeployRequest) -> Reply:
        """`GET /user/tokens/verify`, which wrangler calls when it doubts its credentials: the
        caller's AWS identity stands in for a token, so the answer says whose it is (audited
        like any call; nothing is forwarded)."""
        record = audit_record(request.request_id, request.caller, None)
        record.route = request.route
        try:
            stored = self._policies.current()
            record.policy_version = stored.version
            team = admitted_team(stored.policy, request.caller, record)
        except GatewayError as error:
            record.code, record.reasons = error.code, [error.message]
            record.outcome = OUTCOME_OF_ERROR.get(error.code, Outcome.INTERNAL_ERROR).value
            reply = error_reply(error, request_id=request.request_id)
        else:
            message = (
                f"signed by {request.caller.principal}, a principal of team {team!r}: calls go "
                "through the assets gateway with the org's token, under the org's policy"
            )
            record.outcome = Outcome.ALLOWED.value
            reply = success_reply(
                {"id": f"assets-gateway:{team}", "status": "active"},
                headers={"X-Request-Id": request.request_id},
                messages=[{"code": 19065, "message": message}],
            )
        record.status = reply.status
        self._audit.record(record)
        return reply

    def _run(
        self, request: DeployRequest, record: AuditRecord, progress: _Progress
    ) -> tuple[Reply, Outcome]:
        if request.script_name is None:
            check_account(request.account_id)
        else:
            check_target(SessionTarget(request.account_id, request.script_name, request.namespace))
        self._check_size(request)
        stored = self._policies.current()
        record.policy_version = stored.version
        team = progress.team = admitted_team(stored.policy, request.caller, record)
        team_policy = stored.policy.teams[team]
        limits = stored.policy.limits_of(team, at=moment(self._now()))
        access = access_reasons(
            team, team_policy, request.account_id, request.script_name, request.namespace
        )
        judged, call = self._read(request, record)
        progress.judged = judged
        reasons = (
            deploy_reasons(team, limits.deploy, team_policy.script_globs, judged)
            if judged is not None
            else []
        )
        if access:
            every = [*access, *reasons]
            count = len(every)
            raise PolicyDenied(
                f"the org's policy denies this call ({count} reason{'s' if count > 1 else ''})",
                reasons=every,
            )
        if reasons:
            count = len(reasons)
            raise DeployDenied(
                f"the org's deploy policy denies this {_WHAT[request.kind]} "
                f"({count} reason{'s' if count > 1 else ''})",
                reasons=reasons,
            )
        charge = Charge(
            entries=0, bytes=0, sessions=0, deploy_calls=1, deploys=request.kind.deploys
        )
        # Only the limits this call moves: a read leaves the deploy counters alone.
        progress.limits = [
            limit for limit in limits.quotas.deploy_limits() if charge.amount(limit.counter)
        ]
        now = self._now()
        try:
            ticket = self._quotas.charge(team, progress.limits, charge, now, request.request_id)
        except QuotaExceeded as error:
            raise DeployQuotaExceeded(error.message, headers=error.headers) from None
        progress.ticket = ticket
        record.quota = {state.limit.name: state.used for state in ticket.after}
        if ticket.budget is not None:
            record.quota["cloudflare-5min"] = ticket.budget.window_calls
        calls = UpstreamCalls(self._quotas, ticket, now, request.request_id, self._now)
        answer = call_with_org_token(
            tokens=self._tokens,
            quotas=self._quotas,
            record=record,
            calls=calls,
            send=lambda token: self._upstream.forward(call, token, calls),
            now=self._now,
        )
        record.upstream_status, record.upstream_ms = answer.status, round(answer.elapsed_ms, 3)
        if answer.status == 429:
            back_off(self._quotas, answer, now)
        outcome = Outcome.ALLOWED if 200 <= answer.status < 300 else Outcome.REFUSED_UPSTREAM
        headers = {**answer.headers, **ticket.headers(), "X-Request-Id": request.request_id}
        return Reply(answer.status, answer.body, headers), outcome

    def _check_size(self, request: DeployRequest) -> None:
        size = len(request.body)
        if request.kind is DeployCall.WORKER_UPLOAD:
            if size > self._max_body:
                raise WorkerUploadTooLarge(
                    f"the request body is {size} bytes, more than {self._max_body}: "
                    "send it with Content-Encoding: gzip"
                )
        elif request.kind is not DeployCall.READ and size > MAX_JSON_BODY_BYTES:
            raise InvalidDeployRequest(
                f"the request body is {size} bytes; a {_WHAT[request.kind]} takes at most "
                f"{MAX_JSON_BODY_BYTES}"
            )

    def _read(
        self, request: DeployRequest, record: AuditRecord
    ) -> tuple[JudgedDeploy | None, UpstreamCall]:
        """What the deploy policy judges of the call (None for a read), and the call to forward
        if it finds nothing against it: the bytes judged and the headers that give them their
        meaning."""
        if request.kind is DeployCall.READ:
            return None, UpstreamCall("GET", request.path, request.query)
        if request.kind is DeployCall.WORKER_UPLOAD:
            upload = read_worker_upload(
                request.body,
                request.content_type,
                request.content_encoding,
                UploadLimits(max_wire_bytes=self._max_body),
            )
            record.deploy = _upload_details(upload)
            judged = JudgedDeploy(request.kind, upload=upload.summary)
            body, headers = upload.forward_body(), upload.forward_headers()
        else:
            body, headers = _json_body(request), {"Content-Type": "application/json"}
            document = parse_json_object(body, _WHAT[request.kind])
            judged = JudgedDeploy(request.kind, body=document)
            if request.kind is DeployCall.DEPLOYMENT:
                deployment = deployment_of(document)
                record.deploy = {
                    "versions": {v.version_id: v.percentage for v in deployment.versions}
                }
        call = UpstreamCall(
            request.method,
            request.path,
            request.query,
            body,
            headers,
            idempotent=request.method != "POST",
        )
        return judged, call

    def _remember(self, request: DeployRequest, record: AuditRecord, progress: _Progress) -> None:
        """Keep what the deploy policy judged of a write, for admins replaying a proposed
        policy: refused callers, and every write whose body was read."""
        refused_caller = record.outcome == Outcome.REFUSED_CALLER.value
        if self._decisions is None or request.script_name is None:
            return
        if progress.judged is None and not refused_caller:
            return
        self._decisions.record(
            RecordedDecision(
                at=self._now(),
                request_id=request.request_id,
                door="deploy",
                principal=request.caller.principal_arn,
                target=SessionTarget(request.account_id, request.script_name, request.namespace),
                policy_allowed=record.outcome
                not in (Outcome.REFUSED_CALLER.value, Outcome.REFUSED_POLICY.value),
                team=progress.team,
                outcome=record.outcome,
                policy_version=record.policy_version,
                deploy=progress.judged,
            )
        )


def _json_body(request: DeployRequest) -> bytes:
    encoding = (request.content_encoding or "identity").strip().lower()
    if encoding != "identity":
        raise InvalidDeployRequest(
            f"a {_WHAT[request.kind]} is sent without Content-Encoding, not {encoding[:40]!r}"
        )
    return request.body


def _upload_details(upload: WorkerUpload) -> dict[str, Any]:
    """What the audit keeps of an upload: what it binds and how big it is, never a value."""
    summary = upload.summary
    return {
        "main_module": summary.main_module or summary.body_part,
        "compatibility_date": summary.compatibility_date,
        "bindings": [f"{binding.type}:{binding.name}" for binding in summary.bindings],
        "modules": len(summary.modules),
        "script_bytes": summary.script_bytes,
        "wire_sha256": upload.wire_sha256,
        "assets": summary.assets_jwt is not None,
    }
