"""Operations: run history and metrics, built on the job listeners (``app.add_listener``).

Nothing here runs unless the user attaches it to an app: with none attached, the runtime
has no listener and pays nothing.
"""
