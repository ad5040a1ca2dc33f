"""Channel bindings: the cluster and namespace a channel's commands default to."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from core.store.models import ChannelBinding
from core.values import Actor


def get_binding(*, session: Session, channel: str) -> ChannelBinding | None:
    return session.get(ChannelBinding, channel)


def set_binding(
    *,
    session: Session,
    channel: str,
    cluster: str,
    namespace: str,
    set_by: Actor,
    now: datetime | None = None,
) -> ChannelBinding:
    """Bind (or re-bind) a channel; the row is locked so two concurrent binds do not interleave."""
    binding = session.get(ChannelBinding, channel, with_for_update=True)
    if binding is None:
        binding = ChannelBinding(channel=channel)
        session.add(binding)
    binding.cluster = cluster
    binding.namespace = namespace
    binding.updated_at = (now or datetime.now(UTC)).astimezone(UTC)
    binding.updated_by_team = set_by.team_id
    binding.updated_by_user = set_by.user_id
    binding.updated_by_name = set_by.display_name
    session.flush()
    return binding


def clear_binding(*, session: Session, channel: str) -> bool:
    """Remove a channel's binding; False when it had none."""
    result = session.execute(
        delete(ChannelBinding).where(ChannelBinding.channel == channel).returning(ChannelBinding.channel)
    )
    return result.scalar_one_or_none() is not None
