"""One list-model base class, so that no model repeats role-map boilerplate.

A subclass declares its roles as an ``IntEnum`` (member names are the QML role names)
and feeds rows as dicts keyed by those names. ``update`` diffs rows and emits
``dataChanged`` for just the roles that changed, or inserts/removes rows: QML delegates
are never torn down by a model reset, so animations and scroll positions survive.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from enum import IntEnum
from typing import Any, ClassVar

from PySide6.QtCore import Property as QtProperty
from PySide6.QtCore import (
    QAbstractListModel,
    QByteArray,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)

Index = QModelIndex | QPersistentModelIndex


class RoleListModel(QAbstractListModel):
    Roles: ClassVar[type[IntEnum]]
    key_role: ClassVar[str]  # the role whose value identifies a row

    countChanged = Signal()

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[dict[str, Any]] = []

    # --- Qt API --------------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def roleNames(self) -> dict[int, QByteArray]:
        return {int(r): QByteArray(r.name.encode()) for r in self.Roles}

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        try:
            name = self.Roles(role).name
        except ValueError:
            return None
        return self._rows[index.row()].get(name)

    def _count(self) -> int:
        return len(self._rows)

    count = QtProperty(int, _count, notify=countChanged)

    # --- Python API ------------------------------------------------------------------------
    def row(self, key: Hashable) -> Mapping[str, Any] | None:
        for r in self._rows:
            if r[self.key_role] == key:
                return r
        return None

    def update(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Make the model hold ``rows`` (in order), with minimal change signals."""
        before = len(self._rows)
        wanted = [dict(r) for r in rows]
        keys = [r[self.key_role] for r in wanted]
        # remove rows whose key is gone
        for i in reversed(range(len(self._rows))):
            if self._rows[i][self.key_role] not in keys:
                self.beginRemoveRows(QModelIndex(), i, i)
                del self._rows[i]
                self.endRemoveRows()
        for i, new in enumerate(wanted):
            cur = self._rows[i] if i < len(self._rows) else None
            if cur is not None and cur[self.key_role] == new[self.key_role]:
                changed = [int(self.Roles[k]) for k, v in new.items() if cur.get(k) != v]
                if changed:
                    cur.update(new)
                    idx = self.index(i, 0)
                    self.dataChanged.emit(idx, idx, changed)
                continue
            # the key is elsewhere (reordered) or new: drop the stale copy, insert here
            for j in range(i + 1, len(self._rows)):
                if self._rows[j][self.key_role] == new[self.key_role]:
                    self.beginRemoveRows(QModelIndex(), j, j)
                    del self._rows[j]
                    self.endRemoveRows()
                    break
            self.beginInsertRows(QModelIndex(), i, i)
            self._rows.insert(i, new)
            self.endInsertRows()
        if len(self._rows) != len(keys):  # pragma: no cover - defensive
            raise AssertionError("row diff went wrong")
        if len(self._rows) != before:
            self.countChanged.emit()
