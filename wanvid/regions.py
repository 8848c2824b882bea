"""Regions and their API roots (wan-api-2026 §1): what configuration needs to choose the API
root, without loading the model catalogue (``wanvid.models`` re-exports these names)."""

from __future__ import annotations

# wanvid's id -> the shared host's API root. Frankfurt (``eu``) has no shared host: only
# workspace hosts (``--workspace``).
REGIONS: dict[str, str] = {
    "intl": "https://dashscope-intl.aliyuncs.com/api/v1",  # Singapore
    "cn": "https://dashscope.aliyuncs.com/api/v1",  # Beijing
    "us": "https://dashscope-us.aliyuncs.com/api/v1",  # Virginia
}
REGION_IDS = ("intl", "cn", "us", "eu")
REGION_NAMES = {"intl": "Singapore", "cn": "Beijing", "us": "Virginia", "eu": "Frankfurt"}
# The Alibaba Cloud region id of each, as workspace hosts spell it.
CLOUD_REGIONS = {"intl": "ap-southeast-1", "cn": "cn-beijing", "us": "us-east-1",
                 "eu": "eu-central-1"}
# Other spellings --region accepts: the city and the Alibaba Cloud id.
REGION_ALIASES = {**{v: k for k, v in CLOUD_REGIONS.items()},
                  **{v.lower(): k for k, v in REGION_NAMES.items()}}
WORKSPACE_HOST = "https://{workspace}.{cloud_region}.maas.aliyuncs.com/api/v1"


def region_id(value: str) -> str | None:
    """wanvid's id for a region name (``intl``, ``Singapore``, ``ap-southeast-1``), or None."""
    v = value.strip().lower()
    return v if v in REGION_IDS else REGION_ALIASES.get(v)


def workspace_root(workspace: str, region: str) -> str:
    """The recommended workspace host's API root for a (checked) workspace id and region."""
    return WORKSPACE_HOST.format(workspace=workspace, cloud_region=CLOUD_REGIONS[region])
