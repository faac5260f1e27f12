"""One lock for every chart the pages draw: matplotlib's pyplot keeps global state and is
not thread-safe, and pages are rendered in worker threads (oversight's charts and the
pupil page's timeline must never be drawn at the same time)."""

from __future__ import annotations

import threading

PYPLOT = threading.Lock()
