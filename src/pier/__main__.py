"""`python -m pier`: the same command line as `pier`."""

from pier.cli.main import main

if __name__ == "__main__":
    main()
