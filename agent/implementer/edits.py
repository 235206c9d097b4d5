"""Parse and apply the code edits an LLM (or a human patch file) produces.

Two formats are accepted, mixed freely and possibly wrapped in prose and ``` fences:

* SEARCH/REPLACE blocks, the file path on the line before ``<<<<<<< SEARCH``;
* unified diffs (``--- a/x`` / ``+++ b/x`` / ``@@ -l,n +l,n @@`` hunks).

Hunks are applied by content, not by line number (LLM line numbers are unreliable), and
matching tolerates the whitespace drift LLMs typically introduce. Application is atomic:
:func:`plan_edits` computes every new file content in memory and :func:`apply_edits` writes
nothing unless every edit succeeded. Failure messages quote the nearest lines of the file so
that they can be fed back to the LLM.

The code lives in :mod:`.edits_parse` and :mod:`.edits_apply`; import it from here.
"""

from agent.implementer.edits_apply import EditApplyError, apply_edits, plan_edits
from agent.implementer.edits_parse import (
    FORMAT_HELP,
    SEARCH_REPLACE,
    UNIFIED_DIFF,
    Edit,
    EditKind,
    EditParseError,
    parse_edits,
)

__all__ = [
    "FORMAT_HELP",
    "SEARCH_REPLACE",
    "UNIFIED_DIFF",
    "Edit",
    "EditApplyError",
    "EditKind",
    "EditParseError",
    "apply_edits",
    "parse_edits",
    "plan_edits",
]
