"""Print README.rst's set-up commands for a fresh machine, one a line, as CI runs them.

They are the lines of the literal block that follows "On a fresh machine": the
install + demo command and the install + tests command. CI reads them here
rather than typing them again, so that the two cannot drift apart.
"""

import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.rst"


def fresh_machine_commands(text: str) -> list[str]:
    """The lines of the first literal block after "On a fresh machine" in ``text``."""
    after = text[text.index("On a fresh machine") :]
    lines = after[after.index("::") + 2 :].splitlines()[1:]
    commands: list[str] = []
    for line in lines:
        if not line.strip():
            if commands:
                break
            continue
        if not line.startswith("    "):
            break
        commands.append(line.strip())
    return commands


if __name__ == "__main__":
    commands = fresh_machine_commands(README.read_text())
    if len(commands) != 2:
        sys.exit(f"README.rst should give exactly two set-up commands; found {commands}")
    print("\n".join(commands))
