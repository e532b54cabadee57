"""The helpdesk's rules: intake, the confidence-band policy, actions with before and
after snapshots, rollback, feedback, the follow-up owed, analytics, audit rows, the
caps, the sweep.

Services take a SQLAlchemy session and plain values, flush and never commit: the
caller (a listener's transaction, a workflow, a job) owns the transaction. No Slack,
no Bolt, no Celery. May import `bot.agent`, `bot.core` and `models`.
"""
