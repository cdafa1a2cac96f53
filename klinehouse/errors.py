"""The base of klinehouse's expected errors: the CLI prints their message, not a traceback."""


class KlinehouseError(RuntimeError):
    """A failure the user can act on; the message names what was wrong."""
