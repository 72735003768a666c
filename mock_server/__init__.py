"""capture-replay's consumer side: the emulated Capture API, its local-browser backend and the CLI.

May import `recorder` (to read cassettes); `recorder` never imports this package.
"""

__version__ = "0.1.0"
