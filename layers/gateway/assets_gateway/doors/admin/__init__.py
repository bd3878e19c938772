"""The admin door: govern the policy, explain decisions, see usage, stop things.

Every operation checks that the caller is an admin (named by the template, or by the current
policy's `admins`), and every attempt — allowed or refused — is one audit record (`door`).
Changes to what the gateway does (suspend, grants, the kill switch) are new policy versions,
published with the same optimistic concurrency as a full publish (`publishing`), so history, diff
and rollback cover them too; a change that would leave the policy as it is publishes nothing.
The running session functions pick a new version up within their policy cache age.

Modules by job: `request` (what a request carries and its body models), `door` (authorise, run,
audit), `publishing` (reading, validating and publishing versions), `policy_operations`
(get, history, validate, publish, simulate), `team_operations` (usage, reset, grants, suspend,
kill switch), `explain` (what the session door would decide, and why).
"""
