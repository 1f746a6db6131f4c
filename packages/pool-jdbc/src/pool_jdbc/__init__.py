"""Pooled Django backends over JDBC (JPype1; the JVM starts on first use).

ENGINEs ``pool_jdbc.postgresql``, ``pool_jdbc.mysql``, ``pool_jdbc.oracle``,
``pool_jdbc.oceanbase.mysql``, ``pool_jdbc.oceanbase.oracle``.
"""

from .__about__ import __version__

__all__ = ["__version__"]
