"""Running test threads with the interpreter switching between them as often as it can."""
import sys


def run_threads(threads, switch_interval=1e-6):
    """Start ``threads``, wait for all of them, with ``sys.setswitchinterval(switch_interval)``
    meanwhile (threads switch every few bytecodes instead of every 5 ms, so races show)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(switch_interval)
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        sys.setswitchinterval(old)
