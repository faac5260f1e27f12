"""A hub database serves one Kafka cluster and namespace; another is refused, clearly."""

from __future__ import annotations

import pytest

from services.shared.binding import WrongCluster, bind, check_binding
from services.shared.settings import HubSettings

pytestmark = pytest.mark.integration


def test_the_first_start_binds_the_database_and_a_different_cluster_is_refused(
    scratch_db: HubSettings,
) -> None:
    check_binding(scratch_db, "cluster-A")
    check_binding(scratch_db, "cluster-A")  # the same cluster again: fine
    with pytest.raises(WrongCluster, match="holds the hub's state for Kafka cluster cluster-A"):
        check_binding(scratch_db, "cluster-B")
    other_namespace = scratch_db.model_copy(update={"topic_namespace": "trust-b."})
    with pytest.raises(WrongCluster, match="namespace 'trust-b.'"):
        check_binding(other_namespace, "cluster-A")


def test_the_session_database_is_bound_to_the_real_broker(settings: HubSettings) -> None:
    bind(settings)  # the services started on it already bound it: the same broker passes
