"""The ``railway`` backend (DESIGN §7): the worker service's replica count on Railway.

The count is committed in the environment config (``multiRegionConfig``: region -> replicas) and
set with ``environmentPatchCommit`` carrying the whole region map, with no redeploy (that can
reset regions). Railway rejects zero replicas, so zero means stopping the latest deployment and
waking it later; that is opt-in (``RAILWAY_SCALE_TO_ZERO``). The scaler's own service is never
touched: the settings refuse it as the worker service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog

from scaler.backends import BackendError, BackendMisconfigured
from scaler.backends.railway_api import GraphQLErrors, Op, RailwayApi, TokenKind
from scaler.settings import ScalerSettings

log = structlog.get_logger("tide.scaler")


@dataclass(frozen=True, slots=True)
class Replicas:
    """The worker service as Railway reports it."""

    regions: dict[str, int]
    """Committed replicas per region (the whole map the patch must carry)."""
    deployment: str | None
    """Latest deployment id (stopped and woken for zero)."""
    stopped: bool
    running: int
    """Instances of the latest deployment in state RUNNING."""

    @property
    def committed(self) -> int:
        return 0 if self.stopped else sum(self.regions.values())


def spread(workers: int, regions: list[str]) -> dict[str, int]:
    """``workers`` over ``regions`` as evenly as possible, the first regions taking the rest.

    Every region keeps at least one replica (a zero would be refused), so a service in k regions
    runs at least k workers.
    """
    base, extra = divmod(max(workers, len(regions)), len(regions))
    return {region: base + (1 if i < extra else 0) for i, region in enumerate(sorted(regions))}


class RailwayBackend:
    name = "railway"

    def __init__(self, settings: ScalerSettings) -> None:
        self.settings = settings
        self.environment = settings.railway_environment_id
        self.service = settings.railway_worker_service_id
        self._session = aiohttp.ClientSession()
        self.api = RailwayApi(
            self._session,
            settings.railway_api_url,
            settings.railway_api_token,
            settings.railway_timeout_s,
        )
        if settings.railway_token_kind == "account":
            self.api.kind = TokenKind.ACCOUNT

    async def start(self) -> None:
        """The self-check: the token's kind, that it may read the worker service, and its ids.

        A refused token or an unknown id raises :class:`BackendMisconfigured` with one line
        saying which; Railway being unreachable is only logged (each poll tries again).
        """
        try:
            await self._pick_token_kind()
            replicas = await self.read()
        except BackendMisconfigured:
            raise
        except GraphQLErrors as exc:
            raise BackendMisconfigured(
                f"{exc} (check RAILWAY_ENVIRONMENT_ID and RAILWAY_WORKER_SERVICE_ID)"
            ) from None
        except BackendError as exc:
            log.warning("railway.self_check_incomplete", error=str(exc))
            return
        log.info(
            "railway.self_check_passed",
            token=self.api.kind.value,
            service=self.service,
            regions=replicas.regions,
            stopped=replicas.stopped,
            running=replicas.running,
        )

    async def _pick_token_kind(self) -> None:
        wanted = self.settings.railway_token_kind
        if wanted == "account":
            return
        try:
            data = await self.api.call(Op.PROJECT_TOKEN)
        except BackendMisconfigured:
            if wanted == "project":
                raise
            self.api.kind = TokenKind.ACCOUNT  # "auto": not a project token, try it as Bearer
            return
        token = data["projectToken"]
        for field, setting in (
            ("environmentId", self.environment),
            ("projectId", self.settings.railway_project_id),
        ):
            if setting and token.get(field) != setting:
                raise BackendMisconfigured(
                    f"the project token belongs to {field} {token.get(field)}, not {setting} "
                    f"(RAILWAY_{'ENVIRONMENT' if field == 'environmentId' else 'PROJECT'}_ID)"
                )

    async def read(self) -> Replicas:
        data = await self.api.call(
            Op.REPLICAS, {"environmentId": self.environment, "serviceId": self.service}
        )
        config = data["environment"]["config"] or {}
        instance = data["serviceInstance"]
        service_config = (config.get("services") or {}).get(self.service)
        if service_config is None:
            raise BackendMisconfigured(
                f"RAILWAY_WORKER_SERVICE_ID {self.service} is not a service of environment "
                f"{self.environment}"
            )
        region_map: dict[str, Any] = (service_config.get("deploy") or {}).get(
            "multiRegionConfig"
        ) or {}
        regions = {
            region: int(entry.get("numReplicas") or 0)
            for region, entry in region_map.items()
            if entry is not None
        }
        if not regions:  # a service without a region map: the legacy single-region count
            regions = {instance.get("region") or "": int(instance.get("numReplicas") or 1)}
        latest = instance.get("latestDeployment") or {}
        return Replicas(
            regions=regions,
            deployment=latest.get("id"),
            stopped=bool(latest.get("deploymentStopped")),
            running=sum(1 for i in latest.get("instances") or [] if i.get("status") == "RUNNING"),
        )

    async def current(self) -> int | None:
        replicas = await self.read()
        log.debug("railway.replicas", committed=replicas.committed, running=replicas.running)
        return replicas.committed

    async def scale(self, workers: int) -> None:
        replicas = await self.read()
        if workers == 0:
            await self._stop(replicas)
            return
        if replicas.stopped and replicas.deployment:
            await self.api.call(Op.RESTART, {"id": replicas.deployment})
            log.info("railway.woken", deployment=replicas.deployment)
        if "" in replicas.regions:
            raise BackendError(f"Railway reports no region for service {self.service}")
        regions = spread(workers, list(replicas.regions))
        if regions == replicas.regions:
            return
        patch = {
            "services": {
                self.service: {
                    "deploy": {
                        "multiRegionConfig": {r: {"numReplicas": n} for r, n in regions.items()}
                    }
                }
            }
        }
        await self.api.call(
            Op.SCALE,
            {
                "environmentId": self.environment,
                "patch": patch,
                "commitMessage": f"tide scaler: {workers} workers",
            },
        )
        log.info("railway.scaled", regions=regions)

    async def _stop(self, replicas: Replicas) -> None:
        if not self.settings.railway_scale_to_zero:
            raise BackendError("zero replicas needs RAILWAY_SCALE_TO_ZERO=true")
        if replicas.stopped or not replicas.deployment:
            return
        await self.api.call(Op.STOP, {"id": replicas.deployment})
        log.info("railway.stopped", deployment=replicas.deployment)

    async def close(self) -> None:
        await self._session.close()
