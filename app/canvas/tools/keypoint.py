"""Keypoints (L): place, move, hide and remove the keypoints of the selected instance.

With one instance of a category that has a keypoint schema selected, a click places the
keypoint whose name comes next (the first one not placed; Tab skips to the following name,
Shift+Tab back) and the status bar names the one after it. Pressing on a placed point and
dragging moves it; O switches the point last touched between visible and occluded; Delete
removes it. Every gesture is one undoable step on the image's document, durable when the
status bar says so; a pending prediction whose points are corrected becomes accepted. With
nothing selected, a click selects as usual. The rules are `mrcnn.keypoints`."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt

from app.canvas.tools.base import CanvasTool, is_left
from mrcnn import keypoints as kp

#: A press this close to a placed point (screen pixels) grabs it instead of placing one.
GRAB_PX = 9.0
TOGGLE_KEY, SKIP_KEY, BACK_KEY = Qt.Key.Key_O, Qt.Key.Key_Tab, Qt.Key.Key_Backtab
REMOVE_KEYS = (Qt.Key.Key_Delete, Qt.Key.Key_Backspace)


class KeypointTool(CanvasTool):
    name = "keypoint"

    def __init__(self, host):
        super().__init__(host)
        self.active: int | None = None  # index of the point last placed or touched
        self.next_index: int | None = None  # the name a click places (None: the first free)
        self._instance: int | None = None  # the instance `active`/`next_index` belong to
        self._drag: int | None = None
        self._moved = False

    # ---------------------------------------------------------------- what is edited
    def _target(self, quiet: bool = False, say_no_schema: bool = False):
        """(instance id, its row, schema) of the selected instance, or None (said why unless
        `quiet`; a category without a schema is said when `say_no_schema`)."""
        iid = self.host.selected_one("place keypoints", required=not quiet)
        if iid is None:
            return None
        item = self.canvas.instance_items().get(iid)
        if item is None:
            return None
        row = item.row
        if row.schema is None:
            if not quiet or say_no_schema:
                self.host.say(f"Category {row.category!r} has no keypoints: give it a "
                              "schema with Edit ▸ Keypoint Schema…", 0)
            return None
        if iid != self._instance:
            self._instance, self.active, self.next_index = iid, None, None
        return iid, row, row.schema

    def _next(self, points, schema) -> int | None:
        if self.next_index is not None and (points is None
                                            or points[self.next_index][2] == kp.NOT_LABELLED):
            return self.next_index
        return kp.next_unlabelled(points, schema)

    def describe(self) -> None:
        """Say in the status bar which name comes next and what the keys do."""
        target = self._target(quiet=True, say_no_schema=True)
        if target is None:
            return
        _, row, schema = target
        points = row.instance.keypoints
        nxt = self._next(points, schema)
        done = kp.labelled_count(points)
        head = (f"Next keypoint: {schema.names[nxt]} ({nxt + 1} of {schema.size})"
                if nxt is not None else f"All {schema.size} keypoints placed")
        self.host.say(f"{head} · {done}/{schema.size} placed · Tab skips a name, drag a "
                      "point to move it, O: occluded/visible, Delete: remove the point", 0)
        self.canvas.keypoints.set_active(self._instance, self.active)

    # ---------------------------------------------------------------- mouse
    def mouse_press(self, event) -> bool:
        if not is_left(event):
            return False
        target = self._target(quiet=True, say_no_schema=True)
        if target is None:
            return False  # a plain click selects (then the next click places)
        iid, row, schema = target
        x, y = self.point(event)
        points = row.instance.keypoints
        grabbed = kp.nearest_point(points, x, y, GRAB_PX * self.screen_px())
        if grabbed is not None:
            self._drag, self._moved, self.active = grabbed, False, grabbed
            self.host.gesture_started()
            self.canvas.keypoints.set_active(iid, grabbed)
            return True
        index = self._next(points, schema)
        if index is None:
            self.host.say(f"All {schema.size} keypoints are placed: drag one to move it, "
                          "or Delete the one last touched", 0)
            return True
        h, w = self.canvas_shape()
        if not (0 <= x < w and 0 <= y < h):
            return True
        new = kp.with_point(points, schema, index, x, y)
        if self.host.commit("Place keypoint", lambda d: d.set_keypoints(
                iid, new, label=f"place {schema.names[index]}")) is not None:
            self.active, self.next_index = index, None
            self.next_index = kp.next_unlabelled(new, schema)
        self.describe()
        return True

    def canvas_shape(self) -> tuple[int, int]:
        doc = self.host.document()
        return doc.shape if doc is not None else (0, 0)

    def mouse_move(self, event) -> bool:
        if self._drag is None:
            return False
        target = self._target(quiet=True)
        if target is None:
            return True
        iid, row, schema = target
        x, y = self.point(event)
        h, w = self.canvas_shape()
        x, y = min(max(x, 0.0), w - 1e-3), min(max(y, 0.0), h - 1e-3)
        moved = kp.with_point(row.instance.keypoints, schema, self._drag, x, y)
        item = self.canvas.keypoints.items.get(iid)
        if item is not None:  # shown at once; stored on release
            item.set_row(replace(row, instance=replace(row.instance, keypoints=moved)))
        self._moved = True
        return True

    def mouse_release(self, event) -> bool:
        if not is_left(event) or self._drag is None:
            return False
        index, self._drag = self._drag, None
        self.host.gesture_ended()
        target = self._target(quiet=True)
        if target is None or not self._moved:
            self.describe()
            return True
        iid, row, schema = target
        item = self.canvas.keypoints.items.get(iid)
        moved = item.row.instance.keypoints if item is not None else None
        if moved is not None and moved != row.instance.keypoints:
            self.host.commit("Move keypoint", lambda d: d.set_keypoints(
                iid, moved, label=f"move {schema.names[index]}"))
        self.describe()
        return True

    # ---------------------------------------------------------------- keys
    def wants_key(self, event) -> bool:
        if event.modifiers() & (Qt.KeyboardModifier.ControlModifier
                                | Qt.KeyboardModifier.AltModifier):
            return False
        key = event.key()
        if key not in (TOGGLE_KEY, SKIP_KEY, BACK_KEY, *REMOVE_KEYS):
            return False
        if self._target(quiet=True) is None:
            return False
        # O and Delete act on a point only when one was touched; otherwise the window's
        # own meaning of the key (Delete: the instance) stays
        return key in (SKIP_KEY, BACK_KEY) or self.active is not None

    def key_press(self, event) -> bool:
        if not self.wants_key(event):
            return False
        iid, row, schema = self._target(quiet=True)
        points = row.instance.keypoints
        key = event.key()
        if key in (SKIP_KEY, BACK_KEY):
            step = 1 if key == SKIP_KEY else -1
            free = [i for i in range(schema.size)
                    if points is None or points[i][2] == kp.NOT_LABELLED]
            if free:
                now = self._next(points, schema)
                k = free.index(now) if now in free else -1
                self.next_index = free[(k + step) % len(free)]
        elif key == TOGGLE_KEY and points is not None and self.active is not None:
            name = schema.names[self.active]
            self.host.commit("Toggle visibility", lambda d: d.set_keypoints(
                iid, kp.toggled(points, schema, self.active), label=f"occlusion of {name}"))
        elif key in REMOVE_KEYS and points is not None and self.active is not None:
            name = schema.names[self.active]
            left = kp.without_point(points, schema, self.active)
            if self.host.commit("Remove keypoint", lambda d: d.set_keypoints(
                    iid, left, label=f"remove {name}")) is not None:
                self.next_index, self.active = self.active, None
        self.describe()
        return True

    def cancel(self) -> None:
        self._drag = None
        self.active = None
        self.canvas.keypoints.set_active(None, None)
