"""drmaa2-ostracker: the ``os`` backend of ``drmaa2``, running DRMAA2 jobs as local processes.

Select it with ``backend="os"`` (or ``DRMAA2_BACKEND=os``, or as the only installed backend).
Extension keys of its JobInfo and MachineInfo are in :mod:`drmaa2_ostracker.extension`.
"""

__version__ = "0.2.0"
