"""The commands: one registry entry per command (``registry``, ``catalog``) and the code
that runs each (``attend``, ``compare``, ``bptt``, ``train``, ``use``, ``recipe``).

    from seqtool.commands import commands, get_command
    get_command("attend").config.from_mapping({"query": "3,-1"})
"""

from seqtool.commands.registry import (
    Command, Events, Flag, commands, get_command, load, recipe_commands, register_command,
    unregister_command,
)

__all__ = ["Command", "Events", "Flag", "commands", "get_command", "load", "recipe_commands",
           "register_command", "unregister_command"]
