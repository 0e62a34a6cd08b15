"""drmaa2_slurm: the ``slurm`` backend of ``drmaa2``, running DRMAA2 jobs on a Slurm cluster.

Select it with ``backend="slurm"``; the contact string is the path of the cluster's slurm.conf
(default: ``$SLURM_CONF``). Extension keys are in :mod:`drmaa2_slurm.extension`.
"""

__version__ = "0.1.0"
