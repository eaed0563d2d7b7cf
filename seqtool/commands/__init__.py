"""The commands: one registry entry per command (``registry``, ``catalog``), the code that
runs each (``attend``, ``compare``, ``bptt``, ``train``, ``use``, ``recipe``) and the
``Events`` a run reports to (``events``).

    from seqtool.commands import commands, get_command
    get_command("attend").config.from_mapping({"query": "3,-1"})
"""

from seqtool.commands.registry import (
    Command, Flag, commands, get_command, load, recipe_commands, register_command,
)


__all__ = ["Command", "Flag", "commands", "get_command", "load", "recipe_commands",
           "register_command"]
