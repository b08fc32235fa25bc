"""Items of the built-in tasks, made from held-out documents only.

Both kinds are 4-way multiple choice scored by the harness as log-likelihood of each
choice after the context (`acc`: the real one scores highest). Answers and
distractors come from the same distribution: each distinct string (attribute name,
line) of the held-out documents is the answer of at most one item, and distractors
are distinct strings of the same documents drawn uniformly among those of the
answer's length in characters (the nearest lengths where there are too few). A
frequent string is then no likelier to be the answer than a rare one, and answer
and distractors are exchangeable for anything that ignores the context: a model
that knows only the domain's token statistics (a unigram model, a preference for
short or frequent strings, an untrained model) scores 25% in expectation. What lifts
a model above it is knowledge of the domain (docs/tasks.md has measured baselines):

- `names`: a passage ends in `obj.` (a dotted access such as `os.path.` or
  `str.`); the choices are attribute names. No choice appears in the context (up to
  MAX_CONTEXT_LINES lines back), so the answer must be recalled (the API of the
  domain), not copied, and no distractor is ever seen after the same `obj` in the
  held-out text.
- `next-line`: a passage ends at the start of a line (its indentation included); the
  choices are the real line and three other held-out lines, none of which occurs in
  the context.

Every choice is pure Python over strings: the caller passes the documents and a
token counter (`fits`), so the same function serves any tokenizer. Distinct answers
are visited in a keyed hash order (`rewarm.data.hashing`), so the items are the same
on every machine with the same held-out text, and the harness's `limit` takes an
unbiased subset.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rewarm.data.hashing import derive, mix

CHOICES = 4
MAX_ITEMS = 1000
"""Items per task at most (the harness's `limit` takes fewer)."""
MAX_CONTEXT_LINES = 12
"""A context holds at most this many lines before the one the item asks about."""
MIN_LINE_CHARS, MAX_LINE_CHARS = 12, 120
"""`next-line` answers: lines of this many characters (indentation excluded)."""

Fits = Callable[[str, str], bool]
"""fits(context, choice): do the two fit in the model's context (train.seq_len)?
Checked for every choice of an item."""

# `obj.attr` at a word boundary; a lookahead, so `os.path.join` yields `os.path` and
# `path.join` (an overlapping match for each dot).
_ACCESS = re.compile(r"(?=\b([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z][A-Za-z0-9_]{2,})\b)")
_SKIP_OBJECTS = {"self", "cls"}
"""An instance's own attributes are the class's business, not the domain's API."""


@dataclass(frozen=True)
class Item:
    context: str
    choices: list[str]
    label: int
    """Index of the real answer in `choices`."""
    doc: int
    """Index of the held-out document it comes from."""
    offset: int
    """Character offset of the answer in that document."""

    def to_dict(self) -> dict[str, object]:
        return {
            "context": self.context,
            "choices": self.choices,
            "label": self.label,
            "doc": self.doc,
            "offset": self.offset,
        }


def _by_answer(
    key: int, answers: dict[tuple[int, int], str]
) -> Iterator[tuple[str, list[tuple[int, int]]]]:
    """Each distinct answer once, in a keyed hash order, with the places ((doc,
    offset) pairs) it occurs at, also in a keyed order: the first place that makes a
    valid item is used. Visiting answers rather than places keeps a frequent string
    from being likelier to become an item than a rare one."""
    places: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for place, answer in answers.items():
        places[answer].append(place)
    for answer in sorted(places, key=lambda a: (mix(derive(key, a)), a)):
        yield answer, sorted(places[answer], key=lambda p: mix(derive(key, p[0], p[1])))


def _line_start(text: str, pos: int) -> int:
    return text.rfind("\n", 0, pos) + 1


def _window(text: str, pos: int) -> str:
    """The longest context an item at `pos` can have: MAX_CONTEXT_LINES lines back."""
    start = _line_start(text, pos)
    for _ in range(MAX_CONTEXT_LINES):
        if start == 0:
            break
        start = _line_start(text, start - 1)
    return text[start:pos]


def _context(text: str, pos: int, choices: list[str], fits: Fits) -> str | None:
    """The text before `pos`, from a line start at most MAX_CONTEXT_LINES lines back,
    shortened line by line until it fits with every choice; None if even the shortest
    one that is not blank does not. (Checking every choice, not the longest in
    characters, keeps answers and distractors alike: a choice of many tokens shortens
    the context whether it is the answer or not.)"""
    starts = [_line_start(text, pos)]
    while len(starts) <= MAX_CONTEXT_LINES and starts[-1] > 0:
        starts.append(_line_start(text, starts[-1] - 1))
    for start in reversed(starts):
        ctx = text[start:pos]
        if ctx.strip() and all(fits(ctx, c) for c in choices):
            return ctx
    return None


def _distractors(
    answer: str, pool: dict[int, list[str]], ok: Callable[[str], bool], key: int
) -> list[str] | None:
    """Three strings drawn uniformly from `pool` (distinct strings by length) at the
    length of `answer`, or the nearest lengths when there are too few, that pass
    `ok`; the draw is a hash keyed by the item (`key`). None if there are not three."""
    out: list[str] = []
    n = len(answer)
    for d in range(0, max(pool, default=0) + n + 1):
        near = [*pool.get(n - d, []), *(pool.get(n + d, []) if d else [])]
        order = sorted(range(len(near)), key=lambda i: mix(derive(key, d, i)))
        for i in order:
            s = near[i]
            if s != answer and s not in out and ok(s):
                out.append(s)
                if len(out) == CHOICES - 1:
                    return out
    return None


def _item(context: str, answer: str, others: list[str], doc: int, offset: int, key: int) -> Item:
    label = mix(derive(key, doc, offset, 1)) % CHOICES
    choices = list(others)
    choices.insert(label, answer)
    return Item(context=context, choices=choices, label=label, doc=doc, offset=offset)


def _by_length(strings: set[str]) -> dict[int, list[str]]:
    """Distinct strings by length in characters (sorted, so the draw is stable)."""
    pool: dict[int, list[str]] = defaultdict(list)
    for s in sorted(strings):
        pool[len(s)].append(s)
    return dict(pool)


def name_items(docs: list[str], fits: Fits, key: int) -> list[Item]:
    """`names` items: context ends in `obj.`, choices are attribute names."""
    seen_after: dict[str, set[str]] = defaultdict(set)
    found: dict[tuple[int, int], tuple[str, str]] = {}
    for i, text in enumerate(docs):
        for m in _ACCESS.finditer(text):
            obj, attr = m.group(1), m.group(2)
            seen_after[obj].add(attr)
            if obj not in _SKIP_OBJECTS and not attr.startswith("__"):
                found[(i, m.start(2))] = (obj, attr)
    pool = _by_length({attr for _obj, attr in found.values()})
    out: list[Item] = []
    for attr, places in _by_answer(key, {p: attr for p, (_o, attr) in found.items()}):
        for doc, offset in places:
            obj = found[(doc, offset)][0]
            window = _window(docs[doc], offset)
            words = set(re.findall(r"\w+", window))
            if attr in words:
                continue  # answerable by copying from the context
            item_key = derive(key, doc, offset)

            def unseen(s: str, o: str = obj, w: set[str] = words) -> bool:
                return s not in seen_after[o] and s not in w

            others = _distractors(attr, pool, unseen, item_key)
            ctx = None if others is None else _context(docs[doc], offset, [attr, *others], fits)
            if others is not None and ctx is not None:
                out.append(_item(ctx, attr, others, doc, offset, item_key))
                break
        if len(out) == MAX_ITEMS:
            break
    return out


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """(offset of the first non-blank character, stripped content) of each line that
    can be an answer: long enough, mostly letters, digits and spaces."""
    pos = 0
    for line in text.split("\n"):
        content = line.strip()
        if MIN_LINE_CHARS <= len(content) <= MAX_LINE_CHARS:
            wordy = sum(c.isalnum() or c == " " for c in content)
            if 2 * wordy >= len(content):
                yield pos + len(line) - len(line.lstrip()), content
        pos += len(line) + 1


def line_items(docs: list[str], fits: Fits, key: int) -> list[Item]:
    """`next-line` items: context ends at a line's indentation, choices are lines."""
    lines: dict[tuple[int, int], str] = {}
    for i, text in enumerate(docs):
        for offset, content in _lines(text):
            lines[(i, offset)] = content
    pool = _by_length(set(lines.values()))
    out: list[Item] = []
    for answer, places in _by_answer(key, lines):
        for doc, offset in places:
            window = _window(docs[doc], offset)
            if not window.strip() or answer in window:
                continue  # no line before it, or a copy of an earlier line
            item_key = derive(key, doc, offset)

            def not_in_window(s: str, w: str = window) -> bool:
                return s not in w

            others = _distractors(answer, pool, not_in_window, item_key)
            ctx = None if others is None else _context(docs[doc], offset, [answer, *others], fits)
            if others is not None and ctx is not None:
                out.append(_item(ctx, answer, others, doc, offset, item_key))
                break
        if len(out) == MAX_ITEMS:
            break
    return out


MAKERS: dict[str, Callable[[list[str], Fits, int], list[Item]]] = {
    "names": name_items,
    "next-line": line_items,
}
"""Built-in kind -> item maker (the kinds of `rewarm.tasks.spec.KINDS`)."""
