"""Reading tracked runs back: list a notebook's runs, compare runs, render them as HTML.

Everything here reads the tracking store (never the kernel's capture state), so
the same functions serve ``nbtrack.runs()``/``nbtrack.compare()``, the magics,
the CLI and the JupyterLab server. MLflow and pandas are imported when called.
"""
