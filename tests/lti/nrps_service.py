"""The test platform's Names and Role Provisioning service (NRPS 2.0 §2): the context
membership list at `/memberships`, in pages joined by `Link: <...>; rel="next"`, for a
bearer token that grants the NRPS scope. Hooks for the tests: `pages` (lists of member
objects, or any JSON for a malformed page), `loop_to` (the last page's next link points
back to that page), `revoke_after` (the platform forgets every token after serving that
many pages: the tool's next request gets a 401 and must ask for a new token), `foreign_next`
(a next link to another site), and `requests` (what each request asked for).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.lti.platform import INSTRUCTOR, LEARNER, Platform, Reply, Request

NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
MEDIA_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"


def member(
    sub: str,
    email: str = "",
    name: str = "",
    *,
    roles: tuple[str, ...] = (LEARNER,),
    status: str = "Active",
    **extra: Any,
) -> dict[str, Any]:
    """One member object as a platform sends it."""
    body: dict[str, Any] = {"user_id": sub, "roles": list(roles), "status": status}
    if email:
        body["email"] = email
    if name:
        body["name"] = name
    return body | extra


def instructor(sub: str, email: str, name: str = "", **extra: Any) -> dict[str, Any]:
    return member(sub, email, name, roles=(INSTRUCTOR,), **extra)


@dataclass
class MembershipService:
    platform: Platform
    pages: list[Any] = field(default_factory=list)
    context_id: str = "course-1"
    loop_to: int | None = None
    revoke_after: int | None = None
    foreign_next: bool = False
    requests: list[Request] = field(default_factory=list)
    served: int = 0

    def url(self, page: int) -> str:
        return f"{self.platform.url}/memberships" + (f"?page={page}" if page > 1 else "")

    def answer(self, request: Request) -> Reply:
        self.requests.append(request)
        if NRPS_SCOPE not in self.platform.bearer_scopes(request):
            return Reply(401, {"error": "invalid_token"})
        if self.revoke_after is not None and self.served == self.revoke_after:
            self.revoke_after = None
            self.platform.tokens.clear()  # the platform restarted and forgot its tokens
            return Reply(401, {"error": "invalid_token"})
        page = int(request.query.get("page", "1"))
        if not 1 <= page <= len(self.pages):
            return Reply(404, {"error": "no such page"})
        self.served += 1
        content = self.pages[page - 1]
        body: Any = content
        if isinstance(content, list):
            body = {
                "id": self.url(page),
                "context": {"id": self.context_id, "label": "ML101", "title": "Machine learning"},
                "members": content,
            }
        headers: dict[str, str] = {}
        if page < len(self.pages):
            headers["Link"] = f'<{self.url(page + 1)}>; rel="next"'
        elif self.loop_to is not None:
            headers["Link"] = f'<{self.url(self.loop_to)}>; rel="next"'
        if self.foreign_next and page == 1:
            headers["Link"] = '<https://elsewhere.example/memberships?page=2>; rel="next"'
        return Reply(200, body, headers=headers, content_type=MEDIA_TYPE)


def install_memberships(platform: Platform, *pages: Any, **options: Any) -> MembershipService:
    """Serve these pages of members at `<platform.url>/memberships`."""
    service = MembershipService(platform, list(pages), **options)
    platform.routes[("GET", "/memberships")] = service.answer
    return service
