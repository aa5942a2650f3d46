"""Search keys for Chinese names: "赵六" → "zl zhaoliu", so 拼音首字母 and full pinyin both match."""
from __future__ import annotations

from functools import lru_cache

# A username as people are created and imported with it (engine/org/people.py), and as a
# `user:<username>` assignment rule names it (engine/org/rules.py): zhang.san, 10023, li@sfj.
USERNAME = r"[A-Za-z0-9_.\-@]{2,64}"


@lru_cache(maxsize=20000)
def _char(ch: str) -> tuple[str, str]:
    # Imported on first use: pypinyin loads its phrase dictionary (0.3 s) at import time, which
    # every CLI invocation would otherwise pay.
    from pypinyin import Style, lazy_pinyin

    full = lazy_pinyin(ch, style=Style.NORMAL, errors="default")[0].lower()
    return (full[:1], full) if ch.strip() else ("", "")


def pinyin_key(name: str) -> str:
    """Initials and full pinyin of `name`, lower case, separated by a space.

    Characters are converted one by one (cached), which is ~50× faster than phrase mode
    for bulk imports; a polyphonic surname may get its common reading, which search tolerates."""
    parts = [_char(ch) for ch in name if not ch.isspace()]
    return f"{''.join(p[0] for p in parts)} {''.join(p[1] for p in parts)}"[:300]
