"""capture-replay's producer side: the cassette format, redaction and the recording proxy.

Must never import `mock_server`.
"""

__version__ = "0.1.0"
