"""The ``wardrobe`` command: :mod:`.main` dispatches to the subcommands, which share
:mod:`.common`."""
