"""Students: small networks trained from scratch (no hub weights are ever fetched)."""

from distill.students import zoo  # noqa: F401  (registers the students)
