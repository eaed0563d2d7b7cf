"""`python -m seqtool` runs the command-line interface."""

from seqtool.cli import main

if __name__ == "__main__":
    main()
