"""Resource limits for compiling and running scripts (Pigeonhole's defaults where it has one)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SieveLimits:
    max_script_size: int = 1 << 20  # bytes of script text
    max_nesting: int = 32  # blocks and tests; RFC 5228 asks for at least 15
    max_actions: int = 32  # distinct actions in one result
    max_redirects: int = 4  # distinct redirect targets per message
    max_cpu_seconds: float = 1.0  # wall-clock budget for one evaluation
    max_variable_size: int = 4096  # characters in one variable value (Pigeonhole: 4 KiB)
    max_variables: int = 255  # distinct variables in one script run
    max_steps: int = 100_000  # commands and tests evaluated, a second guard besides time
    max_include_depth: int = 10  # sieve_include_max_nesting_depth
    max_includes: int = 255  # distinct scripts in one include tree (sieve_include_max_includes)
    duplicate_default_seconds: int = 12 * 3600  # sieve_duplicate_default_period
    duplicate_max_seconds: int = 2 * 86400  # sieve_duplicate_max_period
    max_header_size: int = 2048  # bytes of an addheader value (sieve_editheader_max_header_size)
