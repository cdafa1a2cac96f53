"""`python -m app`: the `klinehouse` command."""

from app.cli import main

main()
