"""Process measurements from the Linux kernel and ``resource``: peak RSS, its reset, CPU time.

Standard library only, so that a measuring process that must not load occworld4d (the
reference side of ``tools/analysis_tools/benchmark_vs_reference.py``) can load this file by
its path (``importlib.util.spec_from_file_location``) and measure the same way as ours.
"""
from typing import Optional


def proc_status_kb(key: str) -> Optional[int]:
    """A ``/proc/self/status`` field in kB (e.g. ``'VmHWM'``, the peak RSS), None if absent."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux >= 4.0); True on success."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:  # a kernel control file, not an output
            f.write('5')
        return True
    except OSError:
        return False


def process_cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (all threads)."""
    import resource  # POSIX only: kept local so that the rest of the module imports anywhere
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def process_peak_rss_mb() -> float:
    """Peak resident set size of this process since it started, MiB (Linux ru_maxrss)."""
    import resource  # POSIX only (see process_cpu_seconds)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
