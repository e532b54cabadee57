"""The base every layer stands on: settings, the one clock, the errors a person is
told about, and error reporting (Sentry).

May import `models` only (and third-party libraries); nothing else of ours.
"""
