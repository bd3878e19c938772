"""What the deploy policy reads of one governed write, and its judgment (pure).

The deploy door builds a `JudgedDeploy` from the call it holds and asks `deploy_reasons`; the
decision log keeps it (`as_record`), and a policy simulation rebuilds it (`from_record`) and
asks the same function under the proposed policy, so a replay judges exactly what the door
judged. Only what the rules read is kept: binding types, names and the resources they name,
tail consumers, flags, sizes and the small JSON bodies (never a binding's value, nor the
assets JWT).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from assets_gateway.domain.deploy_policy import (
    EffectiveDeployRules,
    deployment_of,
    deployment_reasons,
    script_settings_reasons,
    subdomain_reasons,
    upload_reasons,
)
from assets_gateway.domain.errors import Problem
from assets_gateway.domain.globs import GlobSet
from assets_gateway.domain.worker_metadata import BindingKind, BindingSummary

if TYPE_CHECKING:  # imported where used: the session and S3 functions never parse an upload
    from assets_gateway.domain.worker_upload import UploadSummary


class DeployCall(StrEnum):
    """What a governed call does, which decides what the deploy policy reads of it."""

    READ = "read"  # a GET of the Worker's (or the account's) state
    WORKER_UPLOAD = "worker_upload"  # PUT …/scripts/{s} or POST …/versions: multipart
    DEPLOYMENT = "deployment"  # POST …/deployments
    SCRIPT_SETTINGS = "script_settings"  # PATCH …/script-settings
    SUBDOMAIN = "subdomain"  # POST …/scripts/{s}/subdomain (workers.dev and preview URLs)

    @property
    def deploys(self) -> int:
        """What the call counts against the team's deploy quotas (a version or a deployment)."""
        return 1 if self in (DeployCall.WORKER_UPLOAD, DeployCall.DEPLOYMENT) else 0


@dataclass(frozen=True)
class JudgedDeploy:
    """A write as the deploy policy reads it: an upload's summary, or the JSON object of a
    deployment, script settings or subdomain change."""

    call: DeployCall
    upload: UploadSummary | None = None
    body: Mapping[str, Any] | None = None

    def as_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"call": self.call.value}
        if self.upload is not None:
            summary = self.upload
            record["upload"] = {
                "bindings": [
                    [b.type, b.name, b.kind.value, [list(pair) for pair in b.resources]]
                    for b in summary.bindings
                ],
                "unknown_fields": list(summary.unknown_fields),
                "tail_consumers": list(summary.tail_consumers),
                "logpush": summary.logpush,
                "migrations": summary.migrations,
                "script_bytes": summary.script_bytes,
            }
        if self.body is not None:
            record["body"] = dict(self.body)
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> JudgedDeploy:
        upload = None
        facts = record.get("upload")
        if isinstance(facts, Mapping):
            from assets_gateway.domain.worker_upload import UploadSummary  # noqa: PLC0415

            upload = UploadSummary(
                main_module=None,
                body_part=None,
                modules=(),
                script_bytes=int(facts["script_bytes"]),
                wire_bytes=0,
                compatibility_date=None,
                compatibility_flags=(),
                bindings=tuple(
                    BindingSummary(
                        type_, name, BindingKind(kind), tuple((f, v) for f, v in resources)
                    )
                    for type_, name, kind, resources in facts["bindings"]
                ),
                unknown_fields=tuple(facts["unknown_fields"]),
                tail_consumers=tuple(facts["tail_consumers"]),
                logpush=bool(facts["logpush"]),
                migrations=bool(facts["migrations"]),
                keep_bindings=None,
                keep_assets=None,
                assets_jwt=None,
            )
        body = record.get("body")
        return cls(DeployCall(record["call"]), upload, body if isinstance(body, Mapping) else None)


def deploy_reasons(
    team_name: str, rules: EffectiveDeployRules, own_scripts: GlobSet, judged: JudgedDeploy
) -> list[Problem]:
    """Every reason the deploy policy refuses the write (none for a read)."""
    body = judged.body or {}
    if judged.call is DeployCall.WORKER_UPLOAD and judged.upload is not None:
        return upload_reasons(team_name, rules, own_scripts, judged.upload)
    if judged.call is DeployCall.DEPLOYMENT:
        return deployment_reasons(team_name, rules, deployment_of(body))
    if judged.call is DeployCall.SCRIPT_SETTINGS:
        return script_settings_reasons(team_name, rules, own_scripts, body)
    if judged.call is DeployCall.SUBDOMAIN:
        return subdomain_reasons(team_name, rules, body)
    return []
