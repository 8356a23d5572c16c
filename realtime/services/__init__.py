"""The gateway's application services, shared by the WebSocket handlers and the HTTP API."""

from __future__ import annotations

from dataclasses import dataclass

from notify.email import OutboxMailer
from persistence.store import Store
from realtime.config import Settings
from realtime.services.audit import Audit
from realtime.services.board import Board
from realtime.services.consents import Consents
from realtime.services.gdpr import Privacy
from realtime.services.history import History
from realtime.services.invitations import Invitations
from realtime.services.membership import Membership
from realtime.services.notification_rules import Digests, NotificationRules
from realtime.services.publishing import Publisher
from realtime.services.push import PushService
from realtime.services.receipts import Receipts
from realtime.services.signin import SignIn
from realtime.services.uploads import UploadRate, Uploads
from school.directory import Directory


@dataclass(frozen=True, slots=True)
class Services:
    """What the HTTP API is given (as `app.state.services`, set by the app's lifespan)."""

    settings: Settings
    store: Store
    directory: Directory
    publisher: Publisher
    history: History
    receipts: Receipts
    membership: Membership
    signin: SignIn | None = None  # sign-in by e-mailed codes and device sessions (issue 11)
    invitations: Invitations | None = None
    outbox: OutboxMailer | None = None  # --demo without SMTP: the e-mails it would have sent
    board: Board | None = None  # the director's board: reach, lists, reminders (issue 17)
    audit: Audit | None = None  # the append-only audit log (issue 15)
    notification_rules: NotificationRules | None = None  # quiet hours and preferences (issue 12)
    digests: Digests | None = None  # the e-mail digest's entries (issue 12)
    push: PushService | None = None  # Web Push subscriptions and the VAPID key (issue 12)
    uploads: Uploads | None = None  # uploaded files and private downloads (issue 13)
    consents: Consents | None = None  # image consents of the students' guardians (issue 13)
    upload_rate: UploadRate | None = None
    privacy: Privacy | None = None  # children's data: export, erasure, the school year (issue 15)
