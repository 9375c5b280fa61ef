"""Sign-in for the dashboard: Streamlit's own OIDC (`st.login`, `st.user`), roles from the settings.

With an `[auth]` section in the settings file Streamlit reads (`.streamlit/secrets.toml`; `rfm dashboard`
passes the user's settings file as `--secrets.files`), every page needs a signed-in user with a role:
`gate()` runs in streamlit_app.py before the sidebar loads anything and shows, instead of the app, a
sign-in screen (not signed in) or one line saying the user has no role. Without `[auth]` the dashboard
is in local mode: it serves only this machine (the launcher and `rfm dashboard` refuse any other
address) and the user acts as `access.LOCAL`, an analyst.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from rfm.config import load_settings
from rfm.errors import RfmError
from rfm.service import access
from rfm.service.access import LOCAL, Principal

PRINCIPAL_KEY = "_principal"
LOCAL_MODE_TEXT = "Local mode: no sign-in; only this machine can open the dashboard"
NOT_LOCAL = ("no sign-in is configured ([auth] in .streamlit/secrets.toml): the dashboard only serves this "
             "machine; configure sign-in to listen on {address}")


def auth_section() -> Mapping[str, Any]:
    """The [auth] section of the secrets Streamlit reads ({} when there is none)."""
    try:
        if not st.secrets.load_if_toml_exists():
            return {}
        section = st.secrets.get("auth")
    except Exception:  # an unreadable secrets file: Streamlit reports it itself; no sign-in section
        return {}
    return section if isinstance(section, Mapping) and section else {}


def auth_configured() -> bool:
    return bool(auth_section())


def providers(section: Mapping[str, Any]) -> list[str | None]:
    """The providers st.login can use: None for the default one ([auth] client_id ...), then every
    [auth.NAME] table that names a client."""
    found: list[str | None] = [None] if "client_id" in section else []
    found += [name for name, value in section.items()
              if isinstance(value, Mapping) and ("client_id" in value or "server_metadata_url" in value)]
    return found


def local_mode_refusal(address: str | None, configured: bool) -> str | None:
    """Why the dashboard must not start (one line), or None: without sign-in it may listen only on a
    loopback address. `address` is Streamlit's server.address (None or "" is all interfaces)."""
    if configured or access.is_loopback(address):
        return None
    return NOT_LOCAL.format(address=address or "0.0.0.0")


def gate() -> Principal | None:
    """Who uses this session, or None after rendering the sign-in screen, the no-role line or the
    local-mode refusal (the caller then stops: no data is loaded). Records the principal for the pages."""
    st.session_state.pop(PRINCIPAL_KEY, None)
    section = auth_section()
    if not section:
        ip = _client_ip()
        if ip and not access.is_loopback(ip):  # behind the listening check: a request from elsewhere
            st.error(f"{LOCAL_MODE_TEXT}; this request came from {ip}.", icon=":material/block:")
            return None
        principal = LOCAL
    else:
        claims = st.user.to_dict()
        if not claims.get("is_logged_in"):
            _sign_in_screen(section)
            return None
        try:
            config = load_settings()
        except RfmError as exc:
            st.error(f"Settings: {exc}", icon=":material/error:")
            return None
        principal = access.principal_for(claims, config)
        if principal.role is None:
            st.title("RFM segments")
            st.warning(f"Signed in as {principal.email}, but no role gives you access to this dashboard: ask its "
                       "administrator to add you to the marketers or analysts setting.", icon=":material/lock:")
            if st.button("Sign out", key="auth_sign_out"):
                st.logout()
            return None
    st.session_state[PRINCIPAL_KEY] = principal
    return principal


def principal() -> Principal:
    """The principal `gate` admitted in this run (pages and page furniture ask here, never st.user)."""
    found = st.session_state.get(PRINCIPAL_KEY)
    if not isinstance(found, Principal):
        raise access.AccessDenied("not signed in")
    return found


def _client_ip() -> str | None:
    try:
        return st.context.ip_address
    except Exception:  # outside a browser session (AppTest, older Streamlit)
        return None


def _sign_in_screen(section: Mapping[str, Any]) -> None:
    st.title("RFM segments")
    st.write("Sign in to see the customer segments.")
    choices = providers(section) or [None]
    cols = st.columns(max(len(choices), 1) + 2)
    for i, provider in enumerate(choices):
        label = "Sign in" if provider is None else f"Sign in with {provider.replace('_', ' ').title()}"
        if cols[i].button(label, type="primary", icon=":material/login:", key=f"auth_sign_in_{provider or 'default'}"):
            try:
                st.login(provider) if provider else st.login()
            except Exception as exc:  # an incomplete [auth] section: one line, not a traceback
                st.error(f"Sign-in is misconfigured: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc}")


def render_identity() -> None:
    """The sidebar's last block: who is signed in and their role (with Sign out), or local mode."""
    found = st.session_state.get(PRINCIPAL_KEY)
    if not isinstance(found, Principal):
        return
    with st.sidebar:
        st.divider()
        if found.local:
            st.caption(LOCAL_MODE_TEXT)
        else:
            role = found.role.value if found.role else "no role"
            st.caption(f"Signed in as **{found.email}** ({role})")
            if st.button("Sign out", key="auth_sidebar_sign_out", icon=":material/logout:"):
                st.logout()
