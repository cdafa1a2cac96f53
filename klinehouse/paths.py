"""Where klinehouse keeps its local state.

The repository root is found from this file; the state folder (`.klinehouse/`,
git-ignored) holds the embedded stack's data, logs and generated reports. Tests
and parallel runs point `KLINEHOUSE_HOME` elsewhere so that they never share
one stack.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def home() -> Path:
    """The state folder: `$KLINEHOUSE_HOME`, else `<repo>/.klinehouse`."""
    from klinehouse.settings import configured_home  # settings imports this module

    configured = configured_home()
    return Path(configured).resolve() if configured else REPO_ROOT / ".klinehouse"


def shared_data_dir() -> Path:
    """The real Binance data shipped beside the checkout (`../shared/data`)."""
    from klinehouse.settings import configured_shared_data

    configured = configured_shared_data()
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "data"
