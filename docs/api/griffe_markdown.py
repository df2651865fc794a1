"""Griffe extension of the docs site: the package's docstrings, written for ``help()``, read as Markdown.

mkdocstrings parses the numpy-style sections of every docstring and renders the rest as Markdown.  The package's
docstrings follow the house style (reST roles, ``name : description`` parameter lines, prose under "Returns",
doctests in running text, plain-text formulas with ``*``), so before parsing this extension rewrites, outside code:

- reST roles (``:func:`x```, ``:class:`~a.b.C```, ``:mod:``, ``:data:``, ...) as cross-references
  ``[`x`][full.path]``, ``x`` resolved in the object's scope; a name that does not resolve (numpy, scipy) stays code;
- a run of doctest lines (``>>>``, ``...`` and their output) outside an "Examples" section as a ``pycon`` block
  (Markdown reads ``>>>`` as three nested quotes);
- ``<`` outside code as ``&lt;`` (``<choices>`` in a sentence is no HTML tag);
- an "Example: ..." paragraph or a doctest right after an item section as an "Examples" section;
- ``name : description`` in Parameters/Attributes as ``name`` + an indented description (the type comes from the
  signature), ``Error : text`` and ``Error text`` under Raises likewise, and a prose "Returns" section as numpy's
  "no name, no type" item (the type comes from the return annotation).

It changes only what the site shows; the docstrings themselves are untouched.  Loaded by ``mkdocs.yml``.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Docstring, Extension, GriffeLoader, Object

_ROLE = re.compile(r":(?:py:)?(func|class|mod|meth|attr|data|obj|exc|const|term):`(~?)([^`<>]+?)(?:\(\))?`")
_SPLIT_ROLE = re.compile(r"(:(?:py:)?[a-z]+:`[^`\n]*)\n( *)([^`\n]*`)")
_CODE_SPAN = re.compile(r"(`+)(?:.+?)\1")
_DASHES = re.compile(r"^\s*-{3,}\s*$")
_EXAMPLE = re.compile(r"^(?:Examples?:\s*(.*)|>>>.*)$")
_SHORT_TYPE = re.compile(r"^[A-Za-z_][\w.]*(\[[^\]]*\])?(\s+(or|of|\|)\s+[A-Za-z_][\w.]*(\[[^\]]*\])?)*$")
_PARAM_HEAD = re.compile(r"^(\*{0,2}\w+(?:,\s*\*{0,2}\w+)*)\s+:\s+(.*)$")
_RAISES_HEAD = re.compile(r"^([A-Za-z_][\w.]*)(?:\s*:\s*|\s+)(.+)$")

_ITEMS = {"parameters", "other parameters", "attributes"}
_RAISES = {"raises", "warns"}
_RETURNS = {"returns", "yields", "receives"}


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


class _Rewriter:
    """Rewrites one docstring; ``obj`` resolves the names of its roles."""

    def __init__(self, obj: Object, loader: GriffeLoader) -> None:
        self.obj, self.loader = obj, loader

    # -- names ----------------------------------------------------------------------------------------------------
    def target(self, name: str) -> str | None:
        """Canonical path of ``name`` as seen from the object, or None when it is not part of the package."""
        name = name.lstrip(".")
        try:
            if not name.startswith("ibtheory."):
                head, _, rest = name.partition(".")
                name = self.obj.resolve(head) + (f".{rest}" if rest else "")
            found = self.loader.modules_collection[name]
            found = found.final_target if found.is_alias else found
            path = found.canonical_path
            # the API pages render public objects only (``filters: public``): link to those, leave the rest as code
            chain = [found]
            while chain[-1].parent is not None:
                chain.append(chain[-1].parent)
            if not all(o.is_public for o in chain[:-1]) or any(s.startswith("_") for s in path.split(".")):
                return None
        except Exception:  # noqa: BLE001 - anything unresolvable (numpy, scipy, a typo) stays plain code
            return None
        return path if path.startswith("ibtheory") else None

    def role(self, m: re.Match) -> str:
        _, tilde, name = m.groups()
        shown = name.rsplit(".", 1)[-1] if tilde else name
        path = self.target(name)
        return f"[`{shown}`][{path}]" if path else f"`{shown}`"

    # -- running text ---------------------------------------------------------------------------------------------
    def text(self, line: str) -> str:
        """Roles to links, then ``<`` escaped outside code spans (``<choices>`` is no HTML tag)."""
        line = _ROLE.sub(self.role, line)
        out, pos = [], 0
        for m in _CODE_SPAN.finditer(line):
            out += [line[pos:m.start()].replace("<", "&lt;"), m.group(0)]
            pos = m.end()
        out.append(line[pos:].replace("<", "&lt;"))
        return "".join(out)

    # -- a docstring ----------------------------------------------------------------------------------------------
    def rewrite(self, doc: str) -> str:
        doc = _SPLIT_ROLE.sub(r"\1\3\n\2", doc)  # a role broken over two lines, joined on the first
        lines = doc.split("\n")
        out: list[str] = []
        section, fence, code, i = "", False, False, 0
        items: list[str] = []  # the current item section's lines, rewritten at its end
        while i < len(lines):
            line = lines[i]
            if not fence and i + 1 < len(lines) and line.strip() and _DASHES.match(lines[i + 1]):
                out += self._items(section, items)
                items = []
                section = line.strip().lower()
                out += [line, lines[i + 1]]
                i += 2
                code = False
                continue
            if section in _ITEMS | _RAISES | _RETURNS and _EXAMPLE.match(line):
                # "Example: ..." or a doctest after an item section starts an Examples section (numpy would read
                # it as one more parameter, exception or return value)
                out += [*self._items(section, items), "Examples", "--------"]
                items, section = [], "examples"
                text = _EXAMPLE.match(line).group(1)
                lines[i] = text[:1].upper() + text[1:] if text is not None else line
                continue
            target = items if section in _ITEMS | _RAISES | _RETURNS else out
            base = 4 if target is items else 0
            if line.lstrip().startswith("```"):
                fence = not fence
                target.append(line)
            elif fence:
                target.append(line)
            elif not line.strip():
                target.append(line)
            elif _indent(line) >= base + 4 and (code or not lines[i - 1].strip()):
                code = True  # an indented code block (a displayed formula)
                target.append(line)
            elif line.lstrip().startswith(">>>") and section != "examples":
                pad = " " * _indent(line)
                block = []
                while i < len(lines) and lines[i].strip():
                    block.append(lines[i])
                    i += 1
                target += [f"{pad}```pycon", *block, f"{pad}```"]
                code = False
                continue
            else:
                code = False
                target.append(self.text(line))
            i += 1
        out += self._items(section, items)
        return "\n".join(out)

    def _items(self, section: str, lines: list[str]) -> list[str]:
        """Item sections in numpy's shape: ``name`` / ``Error`` / ``:`` head lines, descriptions indented."""
        if section in _RETURNS and lines and all(_indent(s) == 0 for s in lines if s.strip()):
            head = next((s for s in lines if s.strip()), "")
            if head and not _SHORT_TYPE.match(head.strip()):
                return [":", *(f"    {s}" if s.strip() else s for s in lines)]
            return lines
        if section not in _ITEMS | _RAISES:
            return lines
        groups: list[list[str]] = []  # head line + its continuation lines
        for s in lines:
            if (s.strip() and _indent(s) == 0) or not groups:
                groups.append([s])
            else:
                groups[-1].append(s)
        out: list[str] = []
        for head, *rest in groups:
            m = (_PARAM_HEAD if section in _ITEMS else _RAISES_HEAD).match(head)
            if not m:
                out += [head, *rest]
                continue
            text = m.group(2).strip()
            if section in _RAISES:
                out += [m.group(1), f"    {text}", *rest]
                continue
            # one item per name: griffe gives every name of "a, b : text" the type and default of the first
            for name in re.split(r",\s*", m.group(1)):
                out += [f"{name} : {text}", *rest] if _SHORT_TYPE.match(text) else [name, f"    {text}", *rest]
        return out


def _comment_docstring(obj: Object) -> str | None:
    """The ``#:`` comment lines right above a module-level assignment (Sphinx's convention for constants)."""
    try:
        lines = obj.parent.lines_collection[obj.parent.filepath]
    except Exception:  # noqa: BLE001 - no source at hand: no comment
        return None
    k, found = (obj.lineno or 1) - 2, []
    while k >= 0 and lines[k].strip().startswith("#:"):
        found.insert(0, lines[k].strip()[2:].strip())
        k -= 1
    return " ".join(found) or None


class MarkdownDocstrings(Extension):
    """Rewrite every docstring of the package for mkdocstrings (see the module docstring).

    Also: a module constant without a docstring takes its ``#:`` comment as one, and an attribute of a class
    without a docstring is left out (the class's "Attributes" section or signature documents it; rendering it again
    as an empty entry would only repeat its name).
    """

    def on_object(self, *, obj: Object, loader: GriffeLoader, **kwargs: Any) -> None:
        if not obj.path.startswith("ibtheory"):
            return
        if obj.is_attribute and obj.docstring is None:
            if obj.parent is not None and obj.parent.is_class:
                obj.public = False
            elif (comment := _comment_docstring(obj)) is not None:
                obj.docstring = Docstring(comment, parent=obj)
        if obj.docstring is not None:
            obj.docstring.value = _Rewriter(obj, loader).rewrite(obj.docstring.value)
