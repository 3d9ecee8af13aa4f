"""The test platform's side of LTI Dynamic Registration 1.0: its OpenID configuration
(§3.4, at `/openid-configuration`, for the registration token as bearer) and its
registration endpoint (§3.6, `POST /register`), which checks the token and the tool's
registration as a platform must and answers with a client id and a deployment id.
Hooks: `issuer` (a configuration that speaks for another site), `deployment_id` (None:
the platform makes none), `refuse` (the registration endpoint answers 400), and what it
received (`registrations`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.lti.platform import Platform, Reply, Request

TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"


@dataclass
class RegistrationService:
    platform: Platform
    token: str = "reg-token-123"
    issuer: str | None = None  # None: the platform's own
    client_id: str = "dr-client-1"
    deployment_id: str | None = "dr-dep-1"
    refuse: bool = False
    registrations: list[dict[str, Any]] = field(default_factory=list)
    configuration_requests: list[Request] = field(default_factory=list)

    @property
    def configuration_url(self) -> str:
        return self.platform.url + "/openid-configuration"

    def configuration(self, request: Request) -> Reply:
        self.configuration_requests.append(request)
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Reply(401, {"error": "invalid_token"})
        url = self.platform.url
        return Reply(
            body={
                "issuer": self.issuer or self.platform.issuer,
                "authorization_endpoint": self.platform.auth_login_url,
                "token_endpoint": self.platform.auth_token_url,
                "jwks_uri": self.platform.jwks_url,
                "registration_endpoint": url + "/register",
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                "scopes_supported": [NRPS_SCOPE, SCORE_SCOPE, "openid"],
                "response_types_supported": ["id_token"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "claims_supported": ["iss", "sub", "name", "email", "given_name"],
                PLATFORM_CONFIGURATION: {
                    "product_family_code": "moodle",
                    "version": "4.3",
                    "messages_supported": [
                        {"type": "LtiResourceLinkRequest"},
                        {"type": "LtiDeepLinkingRequest"},
                    ],
                },
            }
        )

    def register(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Reply(401, {"error": "invalid_token"})
        if self.refuse:
            return Reply(400, {"error": "invalid_redirect_uri", "error_description": "no"})
        body = request.json()
        self.registrations.append(body)
        tool = body.get(TOOL_CONFIGURATION, {})
        missing = [
            name
            for name in ("initiate_login_uri", "redirect_uris", "jwks_uri", "client_name")
            if not body.get(name)
        ] + [name for name in ("domain", "target_link_uri", "claims") if not tool.get(name)]
        if missing or body.get("token_endpoint_auth_method") != "private_key_jwt":
            return Reply(400, {"error": "invalid_client_metadata", "missing": missing})
        answer = dict(body) | {"client_id": self.client_id}
        if self.deployment_id is not None:
            answer[TOOL_CONFIGURATION] = dict(tool) | {"deployment_id": self.deployment_id}
        return Reply(200, answer)


def install_registration(platform: Platform, **options: Any) -> RegistrationService:
    service = RegistrationService(platform, **options)
    platform.routes[("GET", "/openid-configuration")] = service.configuration
    platform.routes[("POST", "/register")] = service.register
    return service
