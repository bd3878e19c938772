"""The policy's versions as the admin door uses them: read the current one, validate a proposal,
publish it over the version it was made from, or find that it changes nothing.

A change that would leave the policy as it is (the same document again, a team suspended twice,
a grant it already has, the kill switch set to what it is) publishes no version: the answer says
`"changed": false`, names the current version and carries one message with code 19056, and the
audit record says the same.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from assets_gateway.domain.envelope import Reply, success_reply
from assets_gateway.domain.errors import (
    AdminNotFound,
    PolicyInvalid,
    PolicyUnavailable,
    PolicyVersionConflict,
    Problem,
)
from assets_gateway.domain.policy import PolicyDocument, moment
from assets_gateway.domain.policy_check import Validation, describe_changes, validate_policy
from assets_gateway.ports.policy_versions import PolicyVersions, PublishedPolicy

if TYPE_CHECKING:
    from assets_gateway.ports.audit import AdminAuditRecord

# The code of the message that says a change published nothing (README, "Error codes").
NO_CHANGE = 19056

# A read-modify-publish (suspend, grant, kill switch) retries when another admin published in
# between: the change is re-applied to the newer version.
AMEND_ATTEMPTS = 3


@dataclass(frozen=True)
class Publication:
    """What a change did: `policy` is the version it published, or the current one when the
    change would have left the policy as it is (`changed` false)."""

    policy: PublishedPolicy
    changed: bool


class Publisher:
    def __init__(
        self, versions: PolicyVersions, *, global_budget: int, now: Callable[[], float]
    ) -> None:
        self._versions = versions
        self._budget = global_budget
        self._now = now

    @property
    def versions(self) -> PolicyVersions:
        return self._versions

    def current(self) -> PublishedPolicy:
        current = self._versions.current()
        if current is None:
            raise PolicyUnavailable("no policy has been published yet")
        return current

    def version(self, version: int) -> PublishedPolicy:
        published = self._versions.version(version)
        if published is None:
            raise AdminNotFound(f"policy version {version} does not exist")
        return published

    def validated(self, raw: Any) -> Validation:
        """`raw` checked as a policy; 400 19051 with every problem when it is not one."""
        validation = validate_policy(raw, global_budget=self._budget, now=moment(self._now()))
        if not validation.valid:
            count = len(validation.errors)
            raise PolicyInvalid(
                f"the policy has {count} problem{'s' if count != 1 else ''}; nothing was published",
                reasons=validation.errors,
                warnings=validation.warnings,
            )
        return validation

    def publish(
        self, document: PolicyDocument, over: PublishedPolicy | None, *, by: str, reason: str
    ) -> Publication:
        """Publish `document` as the version after `over` (None: the first), unless it is the
        same policy as `over`."""
        before = comparable(over)
        if over is not None and before is not None and _same(before, document):
            return Publication(over, changed=False)
        expected = over.version if over is not None else 0
        new = PublishedPolicy(
            version=expected + 1,
            policy=document.model_dump(mode="json", exclude_unset=True),
            published_by=by,
            published_at=moment(self._now()).isoformat(),
            reason=reason,
            changes=tuple(
                describe_changes(before, document)
                if before is not None or over is None
                else [f"replaces version {expected}, which is invalid: {len(document.teams)} teams"]
            ),
        )
        self._versions.publish(new)
        return Publication(new, changed=True)

    def amend(
        self, change: Callable[[dict[str, Any]], bool], *, by: str, reason: str
    ) -> Publication:
        """Apply `change` to the current policy and publish the result; `change` returns False
        when the policy already is as asked, and then nothing is published."""
        for attempt in range(1, AMEND_ATTEMPTS + 1):
            current = self.current()
            parsed(current)  # a change to an invalid policy: publish a valid one first
            policy = copy.deepcopy(current.policy)
            if not change(policy):
                return Publication(current, changed=False)
            validation = self.validated(policy)
            assert validation.document is not None
            try:
                return self.publish(validation.document, current, by=by, reason=reason)
            except PolicyVersionConflict:
                if attempt == AMEND_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover


def change_reply(
    publication: Publication,
    record: AdminAuditRecord,
    result: Mapping[str, Any],
    *,
    unchanged: str,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """The answer to a change, and its audit: the version it published, or, when it published
    nothing, the current version and a message saying why (`unchanged`)."""
    version = publication.policy.version
    record.policy_version = version
    answer = {"version": version, **result, "changed": publication.changed}
    if publication.changed:
        record.changes = list(publication.policy.changes)
        return success_reply(answer, headers=headers)
    message = f"{unchanged}; no new version was published (the current one is {version})"
    record.code, record.message = NO_CHANGE, message
    return success_reply(
        answer, headers=headers, messages=[{"code": NO_CHANGE, "message": message}]
    )


def parsed(published: PublishedPolicy) -> PolicyDocument:
    try:
        return PolicyDocument.model_validate(published.policy)
    except ValidationError:
        raise PolicyUnavailable(
            f"stored policy version {published.version} is invalid; publish a valid one"
        ) from None


def comparable(current: PublishedPolicy | None) -> PolicyDocument | None:
    """The current policy to diff against; None when there is none or it is invalid (a publish
    is how an invalid stored policy gets replaced, so it must not need a valid one)."""
    if current is None:
        return None
    try:
        return PolicyDocument.model_validate(current.policy)
    except ValidationError:
        return None


def _same(before: PolicyDocument, after: PolicyDocument) -> bool:
    # Compared as data: a document that spells a default out is the same policy as one that
    # leaves it out.
    return before.model_dump(mode="json") == after.model_dump(mode="json")


def problem(item: Problem) -> dict[str, Any]:
    """A warning as the answers list it."""
    answer: dict[str, Any] = {"message": item.message}
    if item.pointer is not None:
        answer["pointer"] = item.pointer
    return answer


def etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}
