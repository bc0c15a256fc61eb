"""`python -m clawgen`: the `clawgen` command."""

from clawgen.entry import main

if __name__ == "__main__":
    main()
