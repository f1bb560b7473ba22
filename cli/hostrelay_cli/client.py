"""A small client of the hostrelay HTTP API (requests); errors become ApiError."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

from hostrelay_cli.version import cli_version

TIMEOUT_S = (5.0, 30.0)  # connect, read


class ApiError(Exception):
    """The API answered with an error (`code` from its error body), or could not be reached."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []


def _segment(value: str) -> str:
    return quote(value, safe="")


class HostrelayClient:
    def __init__(
        self,
        base_url: str,
        token: str | None,
        session: requests.Session | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._session = session or requests.Session()
        self._session.headers["User-Agent"] = f"hostrelay-cli/{cli_version()}"
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._session.request(
                method, self._base_url + path, json=body, params=query, timeout=TIMEOUT_S
            )
        except requests.RequestException as exc:
            raise ApiError(0, "unreachable", f"{self._base_url}: {exc}") from None
        if response.status_code >= 400:
            raise _error_of(response)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ApiError(response.status_code, "bad_response", "the API sent non-JSON") from None

    # ------------------------------------------------------------ jobs

    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        job: dict[str, Any] = self._request("POST", "/v1/jobs", body=body)
        return job

    def macct_repair(self, body: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = self._request("POST", "/v1/macct/repair", body=body)
        return response

    def macct_capture(self, body: dict[str, Any]) -> dict[str, Any]:
        job: dict[str, Any] = self._request("POST", "/v1/macct/capture", body=body)
        return job

    def get_job(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self._request("GET", f"/v1/jobs/{_segment(job_id)}")
        return job

    def list_jobs(
        self,
        *,
        host: str | None = None,
        state: str | None = None,
        job_type: str | None = None,
        limit: int | None = None,
        next_token: str | None = None,
    ) -> dict[str, Any]:
        params = {
            "host": host,
            "state": state,
            "type": job_type,
            "limit": limit,
            "next_token": next_token,
        }
        page: dict[str, Any] = self._request("GET", "/v1/jobs", params=params)
        return page

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self._request("POST", f"/v1/jobs/{_segment(job_id)}/cancel")
        return job

    def job_output(
        self, job_id: str, *, after_seq: int = -1, limit: int | None = None
    ) -> dict[str, Any]:
        params = {"after_seq": after_seq, "limit": limit}
        page: dict[str, Any] = self._request(
            "GET", f"/v1/jobs/{_segment(job_id)}/output", params=params
        )
        return page

    # ------------------------------------------------------------ runs

    def create_run(self, body: dict[str, Any]) -> dict[str, Any]:
        run: dict[str, Any] = self._request("POST", "/v1/runs", body=body)
        return run

    def get_run(self, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = self._request("GET", f"/v1/runs/{_segment(run_id)}")
        return run

    def list_runs(
        self, *, limit: int | None = None, next_token: str | None = None
    ) -> dict[str, Any]:
        page: dict[str, Any] = self._request(
            "GET", "/v1/runs", params={"limit": limit, "next_token": next_token}
        )
        return page

    def run_targets(self, run_id: str, *, state: str | None = None) -> list[dict[str, Any]]:
        """Every target of a run (all pages), in start order."""
        targets: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = self._request(
                "GET",
                f"/v1/runs/{_segment(run_id)}/targets",
                params={"state": state, "limit": 500, "next_token": token},
            )
            targets += page["targets"]
            token = page.get("next_token")
            if not token:
                return targets

    def cancel_run(self, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = self._request("POST", f"/v1/runs/{_segment(run_id)}/cancel")
        return run

    # ------------------------------------------------------------ hosts

    def list_hosts(self, tags: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Hosts carrying every tag of `tags` (all hosts without)."""
        selector = [f"{key}:{value}" for key, value in sorted((tags or {}).items())]
        params = {"tag": selector} if selector else None
        hosts: list[dict[str, Any]] = self._request("GET", "/v1/hosts", params=params)["hosts"]
        return hosts

    def patch_host_tags(self, name: str, tags: dict[str, str | None]) -> dict[str, Any]:
        """Set (a value) or remove (None) tags of a host."""
        host: dict[str, Any] = self._request(
            "PATCH", f"/v1/hosts/{_segment(name)}", body={"tags": tags}
        )
        return host

    def get_host(self, name: str) -> dict[str, Any]:
        host: dict[str, Any] = self._request("GET", f"/v1/hosts/{_segment(name)}")
        return host

    def revoke_host(self, name: str) -> dict[str, Any]:
        host: dict[str, Any] = self._request("DELETE", f"/v1/hosts/{_segment(name)}")
        return host

    def create_enrollment(self, body: dict[str, Any]) -> dict[str, Any]:
        offer: dict[str, Any] = self._request("POST", "/v1/enrollments", body=body)
        return offer

    # ------------------------------------------------------------ audit

    def read_audit(
        self,
        *,
        since: str | None = None,
        until: str | None = None,
        action: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        params = {"since": since, "until": until, "action": action, "limit": limit}
        events: list[dict[str, Any]] = self._request("GET", "/v1/audit", params=params)["events"]
        return events

    # ------------------------------------------------------------ tokens

    def create_token(self, body: dict[str, Any]) -> dict[str, Any]:
        token: dict[str, Any] = self._request("POST", "/v1/tokens", body=body)
        return token

    def list_tokens(self) -> list[dict[str, Any]]:
        tokens: list[dict[str, Any]] = self._request("GET", "/v1/tokens")["tokens"]
        return tokens

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        token: dict[str, Any] = self._request("DELETE", f"/v1/tokens/{_segment(token_id)}")
        return token


def _error_of(response: requests.Response) -> ApiError:
    try:
        error = response.json()["error"]
        return ApiError(
            response.status_code,
            str(error["code"]),
            str(error["message"]),
            list(error.get("details") or []),
        )
    except (ValueError, KeyError, TypeError):
        text = response.text.strip()[:200] or response.reason
        return ApiError(response.status_code, f"http_{response.status_code}", text)
