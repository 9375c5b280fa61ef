"""Who may do what in the dashboard, and the audit log of what they did.

Roles come from the settings (`analysts`, `marketers`): an entry is an e-mail address (matched exactly,
case-insensitive), `@domain` (the e-mail's domain) or `group:NAME` (an entry of the OIDC claim named by
`groups_claim`). An analyst also matches the marketer's rights, and analyst wins when both match.

- a **marketer** views, scores and exports;
- an **analyst** also retrains (and saves), renames and promotes.

The checks live here, in the service layer: the dashboard hides the controls a role cannot use, and
the functions below (`train`, `save`, `train_and_save`, `rename`, `promote`, `export_rows`,
`record_export`, `export`) refuse them anyway (`AccessDenied`, one line) before doing anything.
Every retrain/save, rename, promotion and export is appended to the audit log (`settings.audit_log`):
one JSON object per line, written with O_APPEND in a single write, file mode 0o600.

Local mode (no sign-in configured, the dashboard serves only this machine) acts as `LOCAL`, an analyst
recorded as "local".
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rfm.errors import RfmError, first_line

if TYPE_CHECKING:
    import pandas as pd

    from rfm.config import Settings
    from rfm.model import ModelStore, SegmentModel
    from rfm.model.sweep import SweepResult
    from rfm.service.datasets import Dataset
    from rfm.service.models import ClusterNames
    from rfm.service.segmentation import ExportFilter, Segmentation


class AccessDenied(RfmError):
    """The signed-in user's role does not allow this action (one line)."""


class AuditError(RfmError):
    """The audit log cannot be written, so the action it would record is not done (one line)."""


class Role(StrEnum):
    MARKETER = "marketer"
    ANALYST = "analyst"


class Action(StrEnum):
    VIEW = "view"
    SCORE = "score"
    EXPORT = "export"
    RETRAIN = "retrain"  # train a new model (and save it as a version)
    RENAME = "rename"
    PROMOTE = "promote"


ALLOWED: dict[Role, frozenset[Action]] = {
    Role.MARKETER: frozenset({Action.VIEW, Action.SCORE, Action.EXPORT}),
    Role.ANALYST: frozenset(Action),
}
# What a refusal says the action is.
_DOING: dict[Action, str] = {Action.VIEW: "view the dashboard", Action.SCORE: "score customers",
                             Action.EXPORT: "export customers", Action.RETRAIN: "retrain or save models",
                             Action.RENAME: "rename segments", Action.PROMOTE: "promote a model version"}


@dataclass(frozen=True)
class Principal:
    """Who acts: their e-mail (the audit log's `who`), display name and role (None: signed in, no role)."""

    email: str
    name: str = ""
    role: Role | None = None
    local: bool = False

    @property
    def who(self) -> str:
        return "local" if self.local else self.email

    def can(self, action: Action) -> bool:
        return self.role is not None and action in ALLOWED[self.role]

    def describe(self) -> str:
        if self.local:
            return "local mode (no sign-in)"
        return f"{self.name or self.email} ({self.role.value if self.role else 'no role'})"


LOCAL = Principal("local", "local", Role.ANALYST, local=True)


# --- roles ---------------------------------------------------------------------------------------


def _groups(groups: Iterable[str] | str | None) -> set[str]:
    """A groups claim as a set: a list of names, or one string of names separated by commas or spaces."""
    if groups is None:
        return set()
    if isinstance(groups, str):
        groups = groups.replace(",", " ").split()
    return {str(group).strip().casefold() for group in groups if str(group).strip()}


def matches(entry: str, email: str | None, groups: Iterable[str] | str | None = None) -> bool:
    """Whether one `analysts`/`marketers` entry names this user: an e-mail (exact, case-insensitive),
    `@domain` (the e-mail's domain, exactly: `@example.com` does not match `x@sub.example.com`), or
    `group:NAME` (an entry of the groups claim, case-insensitive)."""
    entry = entry.strip()
    if not entry:
        return False
    if entry.lower().startswith("group:"):
        name = entry[len("group:"):].strip().casefold()
        return bool(name) and name in _groups(groups)
    address = (email or "").strip().casefold()
    if "@" not in address:
        return False
    if entry.startswith("@"):
        return address.rsplit("@", 1)[1] == entry[1:].casefold()
    return address == entry.casefold()


def role_for(email: str | None, groups: Iterable[str] | str | None, settings: Settings) -> Role | None:
    """The user's role from the settings: analyst wins over marketer; None when no entry matches."""
    if any(matches(entry, email, groups) for entry in settings.analysts):
        return Role.ANALYST
    if any(matches(entry, email, groups) for entry in settings.marketers):
        return Role.MARKETER
    return None


def principal_for(claims: Mapping[str, Any], settings: Settings) -> Principal:
    """The Principal of a signed-in user's OIDC claims (`email`, `name`, the groups claim). An e-mail the
    provider marks unverified (`email_verified` false) matches no e-mail or @domain entry."""
    email = str(claims.get("email") or "").strip()
    verified = claims.get("email_verified", True) not in (False, "false", "False")
    name = str(claims.get("name") or email or claims.get("sub") or "")
    raw_groups = claims.get(settings.groups_claim)
    groups: Iterable[str] | str | None = (
        raw_groups if isinstance(raw_groups, str) else
        [str(g) for g in raw_groups] if isinstance(raw_groups, (list, tuple, set)) else None)
    role = role_for(email if verified else None, groups, settings)
    return Principal(email or str(claims.get("sub") or "unknown"), name, role)


def require(principal: Principal, action: Action) -> None:
    """Raise AccessDenied (one line) unless the principal's role allows the action."""
    if principal.can(action):
        return
    if principal.role is None:
        raise AccessDenied(f"{principal.who} has no role in this dashboard, so cannot {_DOING[action]}; "
                           "ask an administrator to add you to the analysts or marketers settings")
    raise AccessDenied(f"{principal.who} is a {principal.role.value}: only analysts may {_DOING[action]}")


def is_loopback(address: str | None) -> bool:
    """Whether a listening address serves only this machine: localhost, 127.0.0.0/8, ::1 (or a Unix socket)."""
    text = (address or "").strip()
    if text.lower() == "localhost" or text.startswith("unix://"):
        return True
    try:
        return ipaddress.ip_address(text.strip("[]")).is_loopback
    except ValueError:
        return False


# --- the audit log -------------------------------------------------------------------------------


def audit_record(principal: Principal, what: str, **details: Any) -> dict[str, Any]:
    """One audit event: when (UTC ISO 8601), who, role, what, then the details (version, segments, rows...)."""
    return {"when": datetime.now(UTC).isoformat(timespec="seconds"), "who": principal.who,
            "role": principal.role.value if principal.role else None, "what": what,
            **{key: value for key, value in details.items() if value is not None}}


@contextmanager
def _audit_log(path: str | os.PathLike[str]) -> Iterator[int]:
    """The audit log opened for appending (folder created, file 0o600), before the action it records:
    a log that cannot be written stops the action. Yields the file descriptor."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError as exc:
        raise AuditError(f"{path}: cannot write the audit log: {exc.strerror or first_line(exc)}") from None
    try:
        yield fd
    finally:
        os.close(fd)


def _write(fd: int, path: str | os.PathLike[str], *records: Mapping[str, Any]) -> None:
    data = "".join(json.dumps(record, ensure_ascii=False, default=str) + "\n" for record in records).encode()
    try:
        written = os.write(fd, data)  # one write: O_APPEND puts the lines together at the end
    except OSError as exc:
        raise AuditError(f"{path}: cannot write the audit log: {exc.strerror or first_line(exc)}") from None
    if written != len(data):
        raise AuditError(f"{path}: the audit log took {written} of {len(data)} bytes")


@contextmanager
def recorded(audit_log: str | os.PathLike[str]) -> Iterator[Callable[..., None]]:
    """For an action of another service module: the audit log is opened first (a log that cannot be
    written stops the action), and the yielded `write(*records)` appends the records once it is done."""
    with _audit_log(audit_log) as fd:
        yield lambda *records: _write(fd, audit_log, *records)


def audit(audit_log: str | os.PathLike[str], principal: Principal, what: str, **details: Any) -> dict[str, Any]:
    """Append one event to the audit log; returns the record."""
    record = audit_record(principal, what, **details)
    with _audit_log(audit_log) as fd:
        _write(fd, audit_log, record)
    return record


def read_audit_log(audit_log: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every event of the audit log, oldest first ([] when there is none yet)."""
    try:
        text = Path(audit_log).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --- the jobs, checked and recorded --------------------------------------------------------------


def train(principal: Principal, dataset: Dataset, k: int, *, sweep_result: SweepResult | None = None
          ) -> SegmentModel:
    """A new k-segment model of the dataset, not saved (analysts only; saving is what is recorded)."""
    from rfm.service import models

    require(principal, Action.RETRAIN)
    return models.train(dataset, k, sweep_result=sweep_result)


def save(principal: Principal, store: ModelStore, model: SegmentModel, *, audit_log: str | os.PathLike[str],
         promote: bool = False) -> str:
    """Save a trained model as a new version (promoting it when asked): analysts only, recorded."""
    from rfm.service import models

    require(principal, Action.RETRAIN)
    if promote:
        require(principal, Action.PROMOTE)
    with _audit_log(audit_log) as fd:
        version = models.save(store, model, promote=promote)
        records = [audit_record(principal, "save", version=version, k=model.k, data=model.metadata.data_label,
                                promoted=promote)]
        if promote:
            records.append(audit_record(principal, "promote", version=version))
        _write(fd, audit_log, *records)
    return version


def train_and_save(principal: Principal, store: ModelStore, dataset: Dataset, k: int, *,
                   audit_log: str | os.PathLike[str]) -> str:
    """Retrain k on the dataset and save it as a new version, not promoted (the fit warning's one-click
    retrain): analysts only, recorded."""
    from rfm.service import models

    require(principal, Action.RETRAIN)
    with _audit_log(audit_log) as fd:
        version = models.save(store, models.train(dataset, k))
        _write(fd, audit_log, audit_record(principal, "retrain", version=version, k=k, data=dataset.label))
    return version


def rename(principal: Principal, store: ModelStore, version: str, changes: ClusterNames, *,
           audit_log: str | os.PathLike[str]) -> SegmentModel:
    """Rename segments of a saved version (one write): analysts only, recorded with the old and new names."""
    from rfm.service import models

    require(principal, Action.RENAME)
    with _audit_log(audit_log) as fd:
        before = models.load(store, version)
        renamed = models.rename(store, version, changes)
        names = {str(c.id): {"from": before.segment_name(c.id), "to": c.name}
                 for c in renamed.clusters if c.name != before.segment_name(c.id)}
        _write(fd, audit_log, audit_record(principal, "rename", version=version, segments=names))
    return renamed


def promote(principal: Principal, store: ModelStore, version: str, *, audit_log: str | os.PathLike[str]) -> None:
    """Make a version the promoted one: analysts only, recorded with the version it replaces."""
    from rfm.service import models

    require(principal, Action.PROMOTE)
    with _audit_log(audit_log) as fd:
        previous = store.current_version()
        models.promote(store, version)
        _write(fd, audit_log, audit_record(principal, "promote", version=version, previous=previous))


def export_rows(principal: Principal, segmentation: Segmentation, filters: ExportFilter) -> pd.DataFrame:
    """The customers an export would hold (marketers and analysts), not recorded: what the Export page
    previews; `record_export` records the download."""
    from rfm.service.segmentation import export_frame

    require(principal, Action.EXPORT)
    return export_frame(segmentation, filters)


def record_export(principal: Principal, segmentation: Segmentation, filters: ExportFilter, rows: int, *,
                  audit_log: str | os.PathLike[str]) -> dict[str, Any]:
    """Record an export (the dashboard's download): who, which version, segments and filters, how many rows."""
    require(principal, Action.EXPORT)
    return audit(audit_log, principal, "export", version=segmentation.model.version,
                 data=segmentation.dataset.label, segments=list(filters.segments),
                 countries=list(filters.countries) or None, min_monetary=filters.min_monetary,
                 max_recency=filters.max_recency, rows=int(rows))


def export(principal: Principal, segmentation: Segmentation, filters: ExportFilter, *,
           audit_log: str | os.PathLike[str]) -> tuple[pd.DataFrame, bytes]:
    """Build an export (rows and CSV bytes) and record it."""
    from rfm.service.segmentation import export_csv

    frame = export_rows(principal, segmentation, filters)
    data = export_csv(frame)
    record_export(principal, segmentation, filters, len(frame), audit_log=audit_log)
    return frame, data


__all__ = ["ALLOWED", "LOCAL", "AccessDenied", "Action", "AuditError", "Principal", "Role", "audit",
           "audit_record", "export", "export_rows", "is_loopback", "matches", "principal_for", "promote",
           "read_audit_log", "record_export", "rename", "require", "role_for", "save", "train",
           "train_and_save"]
