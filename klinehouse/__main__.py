from klinehouse.cli import main

main()
