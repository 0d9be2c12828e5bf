"""Categories while correcting: the toolbar's category dropdown (type a few letters of any
category and Enter: `C` puts the keyboard there), digit keys 1–9, and the New / Rename / Merge
/ Delete Category dialogs. Every change is an undoable step on the shown image's document
(renaming, merging and deleting act on the whole project)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QComboBox, QCompleter, QInputDialog, QWidget

from app import keypoint_schema_dialog as keypoint_dialog
from app.controllers.edit_commands import EditCommands
from app.panels.instance_list import swatch
from app.text import plural
from mrcnn.store.records import Category

NEW_ITEM = "New category…"
DELETE_INSTANCES = "Delete them"


def ask_category_name(parent: QWidget | None, title: str, label: str, text: str = ""
                      ) -> str | None:
    name, ok = QInputDialog.getText(parent, title, label, text=text)
    return name.strip() if ok and name.strip() else None


def ask_category(parent: QWidget | None, title: str, label: str, names: list[str],
                 current: str | None = None) -> str | None:
    """One of `names`, offered first at `current` (the category on screen: Enter on a
    dialog opened for it acts on it, not on whichever category happens to be first)."""
    first = names.index(current) if current in names else 0
    name, ok = QInputDialog.getItem(parent, title, label, names, first, False)
    return name if ok and name else None


class CategoryCommands(QObject):
    """Keeps the dropdown in step with the project and the selection; applies choices."""

    def __init__(self, edits: EditCommands, parent: QWidget | None = None):
        super().__init__(parent)
        self.edits = edits
        self._parent = parent
        self.box = QComboBox()
        self.box.setMinimumContentsLength(14)
        self.box.setToolTip("Category of the selected instances (and of new ones); digit keys "
                            "1–9 pick the first nine; C, a few letters and Enter pick any")
        # type-to-pick: the box takes typing; Enter picks the first category that matches
        self.box.setEditable(True)
        self.box.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        completer = QCompleter(self.box.model(), self.box)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.box.setCompleter(completer)
        self.box.lineEdit().returnPressed.connect(self._on_box_typed)
        self._quiet = False
        self.box.activated.connect(self._on_box_activated)
        c = edits.controller
        c.categories_changed.connect(self.refresh)
        c.project_opened.connect(self.refresh)
        c.project_closed.connect(self.refresh)
        c.instances_changed.connect(lambda _id: self.refresh())
        edits.canvas.selection_changed.connect(lambda _ids: self.refresh())

    def categories(self) -> list[Category]:
        c = self.edits.controller
        return c.project.categories() if c.is_open else []

    def refresh(self) -> None:
        """List the project's categories and show the selection's (or the current) one."""
        cats = self.categories()
        shown = self._shown_category(cats)
        self._quiet = True
        try:
            self.box.clear()
            for k, cat in enumerate(cats):
                key = f"{k + 1}  " if k < 9 else "   "
                self.box.addItem(swatch(cat.color), key + cat.name, cat.id)
            self.box.addItem(NEW_ITEM, None)
            index = self.box.findData(shown) if shown is not None else -1
            self.box.setCurrentIndex(index)
        finally:
            self._quiet = False

    def _shown_category(self, cats: list[Category]) -> int | None:
        items = self.edits.canvas.instance_items()
        chosen = {items[i].row.instance.category_id for i in self.edits.canvas.selected_ids()
                  if i in items}
        if len(chosen) == 1:
            return chosen.pop()
        if chosen:
            return None  # several categories selected: show none
        ids = [c.id for c in cats]
        current = self.edits.current_category
        return current if current in ids else (ids[0] if ids else None)

    def _shown_name(self, cats: list[Category]) -> str | None:
        shown = self._shown_category(cats)
        return next((c.name for c in cats if c.id == shown), None)

    def focus_box(self) -> None:
        """Put the keyboard in the dropdown to type a category's name (Enter picks it, Esc
        gives up; either way the keys go back to the canvas)."""
        self.box.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.box.lineEdit().selectAll()
        self.edits.say("Type a category's name and press Enter (Esc: keep it as it is)")

    def match(self, text: str) -> Category | None:
        """The category typed: the one named so, else the first whose name starts with the
        text, else the first that contains it (case ignored)."""
        typed = text.strip().casefold()
        cats = self.categories()
        for k, cat in enumerate(cats):  # the box's own text ("3  dog") names it too
            if typed in (cat.name.casefold(), f"{k + 1}  {cat.name}".casefold()):
                return cat
        if not typed:
            return None
        return (next((c for c in cats if c.name.casefold().startswith(typed)), None)
                or next((c for c in cats if typed in c.name.casefold()), None))

    def _on_box_typed(self) -> None:
        text = self.box.lineEdit().text()
        cat = self.match(text)
        if cat is None:
            self.edits.say(f"No category matches {text.strip()!r} (Edit ▸ New Category… "
                           "makes one)" if text.strip()
                           else "Type a category's name")
            self.refresh()
        else:
            self.choose(cat.id)
        self.edits.canvas.setFocus(Qt.FocusReason.OtherFocusReason)

    def _on_box_activated(self, index: int) -> None:
        if self._quiet or self.box.hasFocus() or self.box.lineEdit().hasFocus():
            return  # typed: `_on_box_typed` picks
        category_id = self.box.itemData(index)
        if category_id is None:
            self.new_category()
        else:
            self.choose(category_id)

    def choose(self, category_id: int) -> None:
        """Give the selected instances this category; it is also the one for new instances."""
        edits = self.edits
        edits.set_current_category(category_id)
        ids = edits.canvas.selected_ids()
        name = edits.controller.category(category_id).name
        if ids:
            changed = edits.commit("Change category",
                                   lambda d: d.set_category(ids, category_id))
            if changed is not None:
                verb = "is" if len(ids) == 1 else "are"
                edits.say(f"{plural(len(ids), 'instance')} {verb} now {name!r}")
        else:
            edits.say(f"New instances will be {name!r}")
        self.refresh()

    def choose_number(self, number: int) -> None:
        """Digit key `number` (1–9): the number-th category."""
        cats = self.categories()
        if 1 <= number <= len(cats):
            self.choose(cats[number - 1].id)
        else:
            self.edits.say(f"There is no category {number} (the project has {len(cats)})")

    def new_category(self, label: str = "Name of the new category:") -> int | None:
        """Ask for a name and add the category; it becomes the one for new instances."""
        edits = self.edits
        name = ask_category_name(self._parent, "New category", label)
        if name is None:
            self.refresh()
            return None
        cat = edits.commit("Add category", lambda d: d.add_category(name))
        if cat is None:
            return None
        self.choose(cat.id)
        return cat.id

    def first_category(self) -> int | None:
        """A shape is finished in a project without categories: name its category."""
        return self.new_category("This project has no categories yet. Name the category of "
                                 "the new instance:")

    def rename_category(self) -> None:
        cats = self.categories()
        if not cats:
            self.edits.say("This project has no categories yet")
            return
        old = ask_category(self._parent, "Rename category", "Category to rename:",
                           [c.name for c in cats], self._shown_name(cats))
        cat = next((c for c in cats if c.name == old), None)
        if cat is None:
            return
        new = ask_category_name(self._parent, "Rename category",
                                f"New name for {cat.name!r} (all images):", cat.name)
        if new is not None and self.edits.commit(
                "Rename category", lambda d: d.rename_category(cat.id, new)) is not None:
            self.edits.say(f"Renamed {cat.name!r} to {new!r} in the whole project")

    def merge_categories(self) -> None:
        cats = self.categories()
        if len(cats) < 2:
            self.edits.say("Merging needs two categories")
            return
        names = [c.name for c in cats]
        source = ask_category(self._parent, "Merge categories",
                              "Merge this category (it goes away):", names,
                              self._shown_name(cats))
        if source is None:
            return
        target = ask_category(self._parent, "Merge categories",
                              f"into this one (every {source!r} instance, all images):",
                              [n for n in names if n != source])
        by_name = {c.name: c for c in cats}
        if target is None or target not in by_name:
            return
        step = self.edits.commit("Merge categories", lambda d: d.merge_categories(
            by_name[source].id, by_name[target].id))
        if step is not None:
            moved = plural(len(step.moved), "instance")
            self.edits.say(f"Merged {source!r} into {target!r} ({moved})")

    def delete_category(self) -> None:
        cats = self.categories()
        if not cats:
            self.edits.say("This project has no categories yet")
            return
        name = ask_category(self._parent, "Delete category", "Category to delete:",
                            [c.name for c in cats], self._shown_name(cats))
        cat = next((c for c in cats if c.name == name), None)
        if cat is None:
            return
        n = self.edits.controller.category_instance_count(cat.id)
        others = [c for c in cats if c.id != cat.id]
        move_to: int | None = None
        if n:
            choices = [f"Move them to {c.name!r}" for c in others] + [DELETE_INSTANCES]
            what = ask_category(self._parent, "Delete category",
                                f"{cat.name!r} has {plural(n, 'instance')} (all images):", choices)
            if what is None:
                return
            if what != DELETE_INSTANCES:
                move_to = others[choices.index(what)].id
        step = self.edits.commit("Delete category",
                                 lambda d: d.delete_category(cat.id, move_to))
        if step is None:
            return
        if move_to is not None:
            target = next(c.name for c in others if c.id == move_to)
            self.edits.say(f"Deleted {cat.name!r}; its {plural(n, 'instance')} now belong to "
                           f"{target!r} (Undo brings it back)")
        else:
            self.edits.say(f"Deleted {cat.name!r} and its {plural(n, 'instance')} (Undo brings "
                           "them back)")

    def keypoint_schema(self) -> None:
        """Edit ▸ Keypoint Schema…: the shown category's keypoints (one undoable step)."""
        cats = self.categories()
        if not cats:
            self.edits.say("This project has no categories yet")
            return
        choice = keypoint_dialog.ask_keypoint_schema(self._parent, cats,
                                                     self._shown_category(cats))
        if choice is None:
            return
        name = next(c.name for c in cats if c.id == choice.category_id)
        step = self.edits.commit("Set keypoint schema", lambda d: d.set_category_keypoints(
            choice.category_id, choice.schema))
        if step is not None:
            self.edits.say(f"{name!r} has no keypoints now (Undo brings them back)"
                           if choice.schema is None else
                           f"{name!r} has {plural(choice.schema.size, 'keypoint')}: select one "
                           "of its instances and press L to place them")
