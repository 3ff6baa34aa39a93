"""Rewrite the model card of a finished run from its results.json, and optionally push the folder.

    python -m hub_cards outputs/shared_ffn                                    # README.md again
    python -m hub_cards outputs/shared_ffn --push_to_hub me/bert-ner-shared   # and upload the model
"""

from __future__ import annotations

import argparse
import sys

from runtime.console import one_line_errors

from .card import read_results, write_model_card
from .push import push_model_folder


def main(argv: list[str] | None = None) -> int:
    parser = one_line_errors(argparse.ArgumentParser(prog="python -m hub_cards", description=__doc__.splitlines()[0]))
    parser.add_argument("output_dir", help="the output folder of a finished run_ner_compress.py run")
    parser.add_argument("--push_to_hub", metavar="REPO_ID", help="then upload the model to this Hub repository")
    parser.add_argument("--hub_token", help="a write token (default: `hf auth login` or HF_TOKEN)")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    args = parser.parse_args(argv)
    try:
        path = write_model_card(args.output_dir, read_results(args.output_dir), repo_id=args.push_to_hub)
        print(f"wrote {path}")
        if args.push_to_hub:
            print(f"pushed to {push_model_folder(args.output_dir, args.push_to_hub, args.hub_token, private=args.private or None)}")
    except (OSError, ValueError) as err:
        print(f"python -m hub_cards: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
