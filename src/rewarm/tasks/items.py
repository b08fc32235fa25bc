"""Items of the built-in tasks, made from held-out documents only.

Both kinds are 4-way multiple choice scored by the harness as log-likelihood of each
choice after the context (`acc`: the real one scores highest). The three distractors
come from the same held-out documents and are matched in length (characters) to the
answer, so a model that knows only the domain's token statistics (a unigram model,
or one that prefers short strings) sits near chance, 25%; what lifts a model above
it is knowledge of the domain (docs/tasks.md):

- `names`: a passage ends in `obj.` (a dotted access such as `os.path.` or
  `str.`); the choices are attribute names. The answer never appears in the context,
  so it must be recalled (the API of the domain), not copied, and no distractor is
  ever seen after the same `obj` in the held-out text.
- `next-line`: a passage ends at the start of a line (its indentation included); the
  choices are the real line and three lines of other held-out documents.

Every choice is pure Python over strings: the caller passes the documents and a
token counter (`fits`), so the same function serves any tokenizer. Candidates are
visited in a keyed hash order (`rewarm.data.hashing`), so the items are the same on
every machine with the same held-out text, and the harness's `limit` takes an
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
"""fits(context, choice): do the two fit in the model's context (train.seq_len)?"""

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


def _order(key: int, keys: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """`keys` ((doc, offset) pairs) in the keyed hash order."""
    return sorted(keys, key=lambda k: mix(derive(key, k[0], k[1])))


def _line_start(text: str, pos: int) -> int:
    return text.rfind("\n", 0, pos) + 1


def _context(text: str, pos: int, longest: str, fits: Fits) -> str | None:
    """The text before `pos`, from a line start at most MAX_CONTEXT_LINES lines back,
    shortened line by line until it and `longest` fit; None if even the answer's own
    line prefix (plus one line for `next-line`) does not."""
    starts = [_line_start(text, pos)]
    while len(starts) <= MAX_CONTEXT_LINES and starts[-1] > 0:
        starts.append(_line_start(text, starts[-1] - 1))
    for start in reversed(starts):
        ctx = text[start:pos]
        if ctx.strip() and fits(ctx, longest):
            return ctx
    return None


def _distractors(
    answer: str, pool: dict[int, list[str]], ok: Callable[[str], bool], key: int
) -> list[str] | None:
    """Three strings of `pool` (by length) closest in length to `answer` that pass
    `ok`, ties broken by a hash keyed by the item (`key`), so items with the same
    answer length get different distractors; None if there are not three."""
    out: list[str] = []
    n = len(answer)
    for d in range(0, max(pool, default=0) + n + 1):
        same = {*pool.get(n - d, []), *pool.get(n + d, [])} if d else set(pool.get(n, []))
        ranked = sorted(same, key=lambda s: (mix(derive(key, s)), s))
        out += [s for s in ranked if s != answer and ok(s)][: CHOICES - 1 - len(out)]
        if len(out) == CHOICES - 1:
            return out
    return None


def _item(context: str, answer: str, others: list[str], doc: int, offset: int, key: int) -> Item:
    label = mix(derive(key, doc, offset, 1)) % CHOICES
    choices = list(others)
    choices.insert(label, answer)
    return Item(context=context, choices=choices, label=label, doc=doc, offset=offset)


def _by_length(strings: set[str]) -> dict[int, list[str]]:
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
    pool = _by_length({a for attrs in seen_after.values() for a in attrs})
    out: list[Item] = []
    for doc, offset in _order(key, list(found)):
        obj, attr = found[(doc, offset)]
        item_key = derive(key, doc, offset)
        others = _distractors(attr, pool, lambda s, o=obj: s not in seen_after[o], item_key)
        if others is None:
            continue
        longest = max([attr, *others], key=len)
        ctx = _context(docs[doc], offset, longest, fits)
        if ctx is None or re.search(rf"\b{re.escape(attr)}\b", ctx):
            continue  # too long, or answerable by copying from the context
        out.append(_item(ctx, attr, others, doc, offset, item_key))
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
    doc_of: dict[str, set[int]] = defaultdict(set)
    for i, text in enumerate(docs):
        for offset, content in _lines(text):
            lines[(i, offset)] = content
            doc_of[content].add(i)
    pool = _by_length(set(doc_of))
    out: list[Item] = []
    for doc, offset in _order(key, list(lines)):
        answer = lines[(doc, offset)]
        if _line_start(docs[doc], offset) == 0:
            continue  # a first line has no context
        item_key = derive(key, doc, offset)
        others = _distractors(answer, pool, lambda s, d=doc: d not in doc_of[s], item_key)
        if others is None:
            continue
        longest = max([answer, *others], key=len)
        ctx = _context(docs[doc], offset, longest, fits)
        if ctx is None or answer in ctx:
            continue  # too long, or a copy of an earlier line
        out.append(_item(ctx, answer, others, doc, offset, item_key))
        if len(out) == MAX_ITEMS:
            break
    return out


MAKERS: dict[str, Callable[[list[str], Fits, int], list[Item]]] = {
    "names": name_items,
    "next-line": line_items,
}
"""Built-in kind -> item maker (the kinds of `rewarm.tasks.spec.KINDS`)."""
