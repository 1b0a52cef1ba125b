"""One policy for impossible requests (config key ``impossible_requests``).

A request is impossible when the configuration asks for more cancer types than exist: N-way tasks
with N above the number of test types (``evaluation.n_way``, ``siamese.val_n_way``,
``markers.selection.n_way``), more test or training types than the cohorts share
(``splits.n_test_types``, ``splits.training_sets``, ``splits.met500_n_train``).

* ``error`` (default): one line naming the config key, what was asked and what exists; nothing
  is computed with a silently smaller value. Contradictions visible in the config alone stop the
  workflow at start-up (``workflow/rules/common.smk``); the others stop the first rule that sees
  the data (``split_types``), and the later rules check again.
* ``reduce``: the largest possible value is used instead, with a warning in the rule's log, and
  the reduced value is written into the results beside the requested one (``n_way_requested`` in
  the one-shot and forward-selection tables, ``val_n_way_requested`` in the Siamese history,
  ``n_types_requested`` / ``n_types`` in ``results/bulk/splits/types.tsv``).
"""

from __future__ import annotations

import logging
import warnings

from .errors import InputError

IMPOSSIBLE_POLICIES = ("error", "reduce")
POLICY_KEY = "impossible_requests"


class ReducedRequestWarning(UserWarning):
    """A request larger than the data allow was reduced (``impossible_requests: reduce``)."""


def check_policy(policy: str) -> str:
    if policy not in IMPOSSIBLE_POLICIES:
        raise InputError(None, f"config key '{POLICY_KEY}'",
                         f"unknown value {policy!r}; expected one of {list(IMPOSSIBLE_POLICIES)}")
    return policy


def fit_request(requested: int, available: int, *, key: str, what: str, policy: str,
                source: str | None = None, log: logging.Logger | None = None) -> int:
    """``requested`` when ``available`` allows it; otherwise an :class:`InputError` naming ``key``
    (policy ``error``) or ``available`` with a warning (policy ``reduce``).

    ``what`` says where the shortfall is (e.g. ``"run 'tcga9' has 10 test types"``); ``source`` is
    the file the available count comes from (named in the error)."""
    check_policy(policy)
    requested, available = int(requested), int(available)
    if requested <= available:
        return requested
    if policy == "error":
        raise InputError(source, f"config key '{key}'",
                         f"{requested} requested but {what}; lower {key}, or set "
                         f"{POLICY_KEY}: reduce to use {available} (recorded in the results)")
    msg = (f"config key '{key}': {requested} requested but {what}; reduced to {available} "
           f"({POLICY_KEY}: reduce)")
    if log is not None:
        log.warning("%s", msg)
    else:
        warnings.warn(msg, ReducedRequestWarning, stacklevel=2)
    return available
