"""Entry point for `nlpsetup` and `python -m nlpsetup`.

`--version` and a warm `list --json` are answered here, before click and the rest are imported:
scripts call them in loops.
"""

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from nlpsetup import __version__

        print(f"nlpsetup {__version__}")
        return
    if sys.argv[1:] == ["list", "--json"]:  # the same answer as the command's, from its cache
        from nlpsetup.cli import listcache

        if (answer := listcache.answer_json()) is not None:
            for warning in answer[1]:
                print(warning, file=sys.stderr)
            print(answer[0])
            return
    from nlpsetup.cli.main import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
