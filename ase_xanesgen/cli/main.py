"""``xanesgen``: generate, predict, analyze, fit, train. Sub-commands are imported only when used."""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

COMMANDS = {
    "generate": "ase_xanesgen.cli.generate",
    "predict": "ase_xanesgen.cli.predict",
    "analyze": "ase_xanesgen.cli.analyze",
    "fit": "ase_xanesgen.cli.fit",
    "train": "ase_xanesgen.cli.train",
}
HELP = {
    "generate": "generate amorphous structures with the diffusion prior (optionally spectrum-guided)",
    "predict": "predict carbon K-edge XANES of structures",
    "analyze": "structure statistics vs a reference (CN, RDF, angles, q4/q6, Voronoi, GAP)",
    "fit": "sp / sp2 / sp3 fractions (+- uncertainty) of a measured NEXAFS scan through the measurement model",
    "train": "train the prior or the XANES model",
}


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Adds ``(default: X)`` to an option's help unless the help states its default itself (an option whose
    default is ``None`` says in words what happens without it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" in text or not action.option_strings or action.required
                or action.default in (None, False, argparse.SUPPRESS)):
            return text
        return f"{text} (default: %(default)s)"


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """The ``xanesgen`` parser; only the sub-command named in ``argv`` gets its options (its module imported)."""
    parser = argparse.ArgumentParser(
        prog="xanesgen", description="Amorphous carbon from a diffusion model, guided by carbon K-edge XANES: "
        "generate, predict, analyze, fit, train.")
    parser.add_argument("-T", "--traceback", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        sp = sub.add_parser(name, help=HELP[name], description=HELP[name], formatter_class=DefaultsHelpFormatter)
        # only the chosen command's module is imported (keeps `xanesgen --help` fast)
        if name in argv:
            mod = importlib.import_module(module)
            mod.add_arguments(sp)
            sp.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``xanesgen`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status: 0 done, 2 bad input (the
    error on stderr; ``-T`` shows the traceback), 130 / 143 a training run stopped by Ctrl-C / SIGTERM."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    # warnings read as the command's messages, not as a source line of the package
    formatwarning = warnings.formatwarning
    warnings.formatwarning = lambda message, *_, **__: f"xanesgen {args.command}: warning: {message}\n"
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt as stop:  # training says where it saved (train.loop.Interrupted)
        print(f"xanesgen {args.command}: {str(stop) or 'interrupted'}", file=sys.stderr)
        return getattr(stop, "exit_code", 130)  # a stopped run is not a finished one
    except (ValueError, OSError, TypeError, FloatingPointError) as err:  # OSError: missing, unwritable, a folder
        if args.traceback:
            raise
        print(f"xanesgen {args.command}: error: {err}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = formatwarning


if __name__ == "__main__":
    sys.exit(main())
