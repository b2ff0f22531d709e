"""Built-in seldbench plugins (installed as ``seldbench_plugins``).

Each sub-package is an ordinary plugin that uses only the public contract in
:mod:`seldbench.hookspecs`; the registry loads every one of them. Copy one to start your own.
"""
