"""One-time invitations: the link an admin hands a user to set their own password.

Only a SHA-256 of the token is stored (the token is 256 random bits, so a
plain hash is enough), so the database alone never yields a usable link.
A used invitation is kept, marked used, so that its link can say so.
"""

import hashlib
import secrets
from datetime import datetime, timedelta

from jupyterhub.orm import Base
from jupyterhub.utils import utcnow
from sqlalchemy import Column, DateTime, Integer, String

TOKEN_BYTES = 32


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class Invite(Base):
    __tablename__ = "gpuhub_invites"
    id = Column(Integer, primary_key=True, autoincrement=True)
    username = Column(String(255), nullable=False, index=True)
    token_hash = Column(String(64), nullable=False, unique=True)
    created = Column(DateTime, nullable=False)  # naive UTC, as JupyterHub's own tables
    expires = Column(DateTime, nullable=False)
    used = Column(DateTime, nullable=True)

    @classmethod
    def mint(cls, db, username: str, expires_in: int) -> tuple[str, "Invite"]:
        """A new invitation for ``username``; earlier unused ones stop working."""
        db.query(cls).filter(cls.username == username, cls.used.is_(None)).delete()
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = utcnow(with_tz=False)
        invite = cls(
            username=username,
            token_hash=token_hash(token),
            created=now,
            expires=now + timedelta(seconds=expires_in),
        )
        db.add(invite)
        db.commit()
        return token, invite

    @classmethod
    def find(cls, db, token: str) -> "Invite | None":
        return db.query(cls).filter(cls.token_hash == token_hash(token)).first() if token else None

    @classmethod
    def forget_user(cls, db, username: str) -> None:
        db.query(cls).filter(cls.username == username).delete()
        db.commit()

    def problem(self, now: datetime | None = None) -> str | None:
        """Why this invitation can no longer be used, or None."""
        now = now or utcnow(with_tz=False)
        if self.used is not None:
            return f"This invitation was already used on {self.used:%Y-%m-%d %H:%M} UTC."
        if now >= self.expires:
            return f"This invitation expired on {self.expires:%Y-%m-%d %H:%M} UTC."
        return None
