"""The audit sink: one structured log line per decision, for CloudWatch Logs Insights. Never the
token."""

from __future__ import annotations

from dataclasses import asdict

from aws_lambda_powertools import Logger

from assets_gateway.ports.audit import AdminAuditRecord, AuditRecord


class LoggerAuditSink:
    """Writes each record as the `audit` key of one JSON log line (filter on `audit.outcome`)."""

    def __init__(self, logger: Logger | None = None) -> None:
        self._logger = logger or Logger(child=True)

    def record(self, record: AuditRecord | AdminAuditRecord) -> None:
        self._logger.info("audit", extra={"audit": asdict(record)})
