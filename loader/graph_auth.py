"""A Microsoft Graph access token: given (ACCESS_TOKEN), by client credentials, or by device code."""

from __future__ import annotations

from collections.abc import Callable

from loader.config import GraphSettings
from loader.errors import ConfigurationError, GraphError

DEVICE_CODE_SCOPES = ["User.Read.All"]


def _authority(graph: GraphSettings) -> dict:
    options: dict = {"authority": f"{graph.authority_host}/{graph.tenant_id or 'organizations'}"}
    if graph.authority_host != GraphSettings.authority_host:
        # A sovereign cloud or a test stand-in: msal must not ask the public cloud whether it knows the host.
        options["instance_discovery"] = False
    return options


def _token_from(result: dict | None, how: str) -> str:
    if result and result.get("access_token"):
        return result["access_token"]
    result = result or {}
    description = (result.get("error_description") or "").strip().splitlines()
    reason = f"{result.get('error', 'no token returned')}" + (f": {description[0]}" if description else "")
    raise GraphError(
        f"Microsoft sign-in by {how} failed ({reason}); check AZURE_TENANT_ID, AZURE_CLIENT_ID and the secret"
    )


def acquire_token(graph: GraphSettings, *, device_code: bool, show: Callable[[str], None]) -> str:
    import requests

    try:
        return _acquire(graph, device_code=device_code, show=show)
    except ValueError as error:  # msal's word for an authority it cannot use
        raise GraphError(
            f"Microsoft sign-in could not start ({' '.join(str(error).split())[:200]}); check AZURE_TENANT_ID"
        ) from None
    except requests.RequestException as error:
        raise GraphError(
            f"cannot reach Microsoft sign-in at {graph.authority_host} ({type(error).__name__}); "
            "check the network, a proxy, or AZURE_AUTHORITY_HOST"
        ) from None


def _acquire(graph: GraphSettings, *, device_code: bool, show: Callable[[str], None]) -> str:
    import msal

    if device_code:
        if not graph.client_id:
            raise ConfigurationError("--device-code needs AZURE_CLIENT_ID (a public client app registration)")
        app = msal.PublicClientApplication(graph.client_id, **_authority(graph))
        flow = app.initiate_device_flow(scopes=DEVICE_CODE_SCOPES)
        if "user_code" not in flow:
            return _token_from(flow, "device code")
        show(flow["message"])
        return _token_from(app.acquire_token_by_device_flow(flow), "device code")
    if graph.access_token:
        return graph.access_token
    if graph.tenant_id and graph.client_id and graph.client_secret:
        app = msal.ConfidentialClientApplication(
            graph.client_id, client_credential=graph.client_secret, **_authority(graph)
        )
        return _token_from(app.acquire_token_for_client(scopes=[f"{graph.base_url}/.default"]), "client credentials")
    raise ConfigurationError(
        "no Microsoft Graph credentials: set ACCESS_TOKEN, or AZURE_TENANT_ID, AZURE_CLIENT_ID and "
        "AZURE_CLIENT_SECRET, or run with --device-code"
    )
