"""The org admin page offers only the unit kinds and posts the server accepts: its copy of the
rules (admin_ui/src/org/tree.ts, used to fill the 新建下级组织 and 任命 dropdowns before asking)
must say what engine/org/checks.py and engine/org/positions.py say."""
from __future__ import annotations

import json
import re

from engine.config import REPO_ROOT
from engine.org.checks import KIND_NAMES, PARENT_KINDS
from engine.org.positions import POSITION_KEYS

TREE_TS = (REPO_ROOT / "admin_ui" / "src" / "org" / "tree.ts").read_text(encoding="utf-8")


def _object(name: str) -> str:
    """The object literal assigned to `name` in tree.ts, as JSON-ish text."""
    m = re.search(rf"const {name}\b[^=]*=\s*(\{{.*?\}});", TREE_TS, re.S)
    assert m, f"{name} not found in tree.ts"
    return m.group(1)


def _json(text: str):
    text = re.sub(r"//.*", "", text)
    text = re.sub(r"([{,]\s*)([A-Za-z_]\w*)\s*:", r'\1"\2":', text)
    text = re.sub(r",(\s*[}\]])", r"\1", text)
    return json.loads(text)


def test_the_pages_unit_kinds_and_where_they_may_sit_are_the_servers():
    assert _json(_object("KIND_NAMES")) == KIND_NAMES
    assert _json(_object("PARENT_KINDS")) == {k: list(v) for k, v in PARENT_KINDS.items()}


def test_the_pages_posts_and_their_titles_are_the_servers():
    kinds = {"COMMITTEE_KINDS": None, "ADMIN_KINDS": None}
    for name in kinds:
        m = re.search(rf"const {name} = (\[.*?\]);", TREE_TS, re.S)
        assert m, name
        kinds[name] = json.loads(m.group(1))
    block = re.search(r"const POSITION_KEYS\b[^=]*=\s*\[(.*?)\n\];", TREE_TS, re.S).group(1)
    client = {}
    for line in re.findall(r"\{ key: .*\},?", block):
        line = line.rstrip(",")
        for name, values in kinds.items():
            line = line.replace(f"kinds: {name}", f"kinds: {json.dumps(values)}")
        entry = _json(line)
        client[entry["key"]] = (entry["name"], entry["kinds"], entry.get("titles", {}))
    server = {k: (p.name, list(p.kinds), dict(p.titles)) for k, p in POSITION_KEYS.items()}
    assert client == server
