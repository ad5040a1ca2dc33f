"""What meshbot says in Slack besides command replies, in one place."""

from __future__ import annotations

from core.store import Actor, Experiment


def working_on(text: str) -> str:
    shown = text.strip() or "help"
    if len(shown) > 200:
        # The ack is the HTTP response to Slack: a 1 MB command must not be echoed back whole.
        shown = shown[:200] + "…"
    return f":hourglass_flowing_sand: Working on `/mesh {shown}`…"


QUESTION_GONE = (
    "This question was already answered or has expired; run the command again if you still want it."
)
SECOND_PERSON_NEEDED = "You asked for this one: another authorized person must approve it."
APPROVAL_NOT_CONFIRM = "This one needs another authorized person to press Approve; Confirm does not run it."
WAITING_FOR_APPROVAL = "Asked the channel: another authorized person must press Approve before this runs."
NOT_CONFIRMED_IN_TIME = "not confirmed in time; nothing was done"
EXPIRED = "This question expired; nothing was done."
CONFIRMED = "Confirmed"
BUSY = ":hourglass: meshbot is busy, try again in a moment; nothing was done."
NOT_RECORDED = (
    "meshbot cannot reach its database to record this request, so nothing was done; try again in a moment."
)
IMAGES_NOT_SHOWN = "_Image not shown in an ephemeral reply; add --share to post it to the channel._"
SLACK_NOT_CONFIGURED = "Slack is not configured on this meshbot (SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET)."


def only_asker_confirms(user_id: str) -> str:
    return f"Only <@{user_id}>, who asked, can confirm this."


def confirm_not_approval(user_id: str) -> str:
    return f"This question needs no approval: only <@{user_id}>, who asked, can confirm it."


def only_asker_cancels(user_id: str) -> str:
    return (
        f"Only <@{user_id}>, who asked, can cancel this; if you disagree, leave it unapproved "
        "and it expires by itself."
    )


def name_of(actor: Actor) -> str:
    return actor.display_name or actor.user_id


def cancelled_by(actor: Actor) -> str:
    return f"cancelled by {name_of(actor)}"


def approved_by(actor: Actor) -> str:
    return f"Approved by {name_of(actor)}"


def how_it_ended(experiment: Experiment) -> str:
    by = experiment.ended_by_name or experiment.ended_by_user
    when = f" at {experiment.ended_at:%H:%M:%S} UTC" if experiment.ended_at else ""
    # "cleared by user" reads badly followed by the user's name.
    reason = (experiment.end_reason or experiment.state).removesuffix(" by user")
    detail = f" — {experiment.detail}" if experiment.detail else ""
    return f"Ended: {reason}{f' by {by}' if by else ''}{when}{detail}."
