"""From a run's model to a registered version and a REST endpoint, with MLflow's own pieces.

``register`` puts a run's logged model into MLflow's Model Registry (the embedded
SQLite store or a tracking server) and records the registration in the lake's
``models`` table; ``serve`` starts MLflow's scoring server for a ``models:/`` or
``runs:/`` URI in the current environment. The CLI (``nbtrack register``,
``nbtrack serve``, ``nbtrack sweep --register-best``), ``nbtrack.register`` and the
server's ``/nbtrack/api/register`` call these.
"""
