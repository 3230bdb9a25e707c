"""moto's server with small additions that implement AWS behaviour moto 5.2.5 lacks.

Each addition implements what AWS does; none fakes a result. The tests that rely on one
say so. Run as: python moto_server.py -H 127.0.0.1 -p PORT
"""

import inspect
import json
import os
import sys

from moto.core.responses import EmptyResult
from moto.core.utils import utcnow
from moto.ec2.models import security_groups as ec2_security_groups
from moto.ecs import models as ecs
from moto.ecs import responses as ecs_responses
from moto.efs import models as efs
from moto.efs import responses as efs_responses
from moto.elasticache import exceptions as elasticache_errors
from moto.elasticache import models as elasticache
from moto.elasticache import responses as elasticache_responses
from moto.iam import models as iam
from moto.rds import models as rds
from moto.s3 import models as s3
from moto.servicequotas import models as servicequotas
from moto.server import main

_create_replication_group = elasticache.ElastiCacheBackend.create_replication_group
_delete_replication_group = elasticache.ElastiCacheBackend.delete_replication_group


def _cluster_defaults():
    """Every CacheCluster argument, empty: lists as [], the rest None."""
    out = {}
    for name, p in inspect.signature(elasticache.CacheCluster.__init__).parameters.items():
        if name != "self":
            out[name] = [] if "list" in str(p.annotation) else None
    return out


def create_replication_group(self, *args, **kwargs):
    """AWS creates a cache cluster per member of a replication group (`<id>-001`, …);
    moto only lists their names, so DescribeCacheClusters on a member fails."""
    group = _create_replication_group(self, *args, **kwargs)
    for cluster_id in group.member_clusters:
        if cluster_id in self.cache_clusters:
            # A member of a group with AUTH has AUTH (Terraform reads AuthTokenEnabled from
            # the member and forgets its auth_token when it says false).
            self.cache_clusters[cluster_id].auth_token_enabled = bool(
                getattr(group, "auth_token_enabled", False)
            )
            continue
        spec = _cluster_defaults()
        spec.update(
            account_id=self.account_id,
            region_name=self.region_name,
            cache_cluster_id=cluster_id,
            replication_group_id=group.replication_group_id,
            cache_node_type=group.cache_node_type,
            engine=getattr(group, "engine", None) or "redis",
            engine_version=getattr(group, "engine_version", None),
            num_cache_nodes=1,
            port=group.port,
            transit_encryption_enabled=getattr(group, "transit_encryption_enabled", None),
            cache_subnet_group_name=getattr(group, "cache_subnet_group_name", None),
            auto_minor_version_upgrade=getattr(group, "auto_minor_version_upgrade", None),
            snapshot_retention_limit=getattr(group, "snapshot_retention_limit", None),
            security_group_ids=list(getattr(group, "security_group_ids", None) or []),
        )
        cluster = elasticache.CacheCluster(**spec)
        cluster.auth_token_enabled = bool(getattr(group, "auth_token_enabled", False))
        # Not a CacheCluster argument, but part of its description in AWS.
        cluster.at_rest_encryption_enabled = getattr(group, "at_rest_encryption_enabled", False)
        # AWS describes a member's VPC security groups (Terraform reads the group's
        # security_group_ids from them); moto keeps the ids but never describes them.
        cluster.security_groups = [
            {"SecurityGroupId": sg, "Status": "active"} for sg in spec["security_group_ids"]
        ]
        self.cache_clusters[cluster_id] = cluster
    return group


def delete_replication_group(self, replication_group_id, *args, **kwargs):
    """Deleting a group deletes its member clusters, and the deletion finishes, as in AWS
    (after minutes there; moto leaves the group `deleting` for ever, so Terraform's destroy
    waits out its 40-minute timeout). The answer still says `deleting`."""
    members = list(getattr(self.replication_groups.get(replication_group_id), "member_clusters", []))
    group = _delete_replication_group(self, replication_group_id, *args, **kwargs)
    for cluster_id in members:
        self.cache_clusters.pop(cluster_id, None)
    self.replication_groups.pop(replication_group_id, None)
    return group


def delete_cache_subnet_group(self, cache_subnet_group_name):
    """DeleteCacheSubnetGroup, which moto lacks (it answers 500, and Terraform's destroy
    retries that for minutes): the group goes, or it does not exist."""
    if cache_subnet_group_name not in self.cache_subnet_groups:
        raise elasticache_errors.CacheSubnetGroupNotFound(cache_subnet_group_name)
    return self.cache_subnet_groups.pop(cache_subnet_group_name)


def delete_cache_subnet_group_response(self):
    self.elasticache_backend.delete_cache_subnet_group(self._get_param("CacheSubnetGroupName"))
    return EmptyResult()


def delete_file_system_policy(self, file_system_id):
    """DeleteFileSystemPolicy, which moto lacks (Terraform's destroy of a file-system policy
    retries the error for minutes)."""
    file_system = self.file_systems_by_id.get(file_system_id)
    if file_system is None:
        raise efs.FileSystemNotFound(file_system_id)
    file_system.file_system_policy = None


def delete_file_system_policy_response(self):
    self.efs_backend.delete_file_system_policy(self._get_param("FileSystemId"))
    return "{}", {"Content-Type": "application/json"}


_update_service = ecs.EC2ContainerServiceBackend.update_service


def update_service(self, service_properties):
    """A new task definition starts a new PRIMARY deployment running it, as in AWS; moto
    changes the service's task definition but leaves the deployment on the old one, and
    keeps the task definition as the request named it instead of its ARN. (With
    MOTO_ECS_SERVICE_RUNNING the new deployment is complete at once, as moto's first is.)"""
    before = self._get_service(
        service_properties.get("cluster", "default"), service_properties["service"].split("/")[-1]
    )
    old = before.task_definition
    # AWS keeps the full ARN whatever form the request named it in (family:revision, a
    # bare family); moto keeps the request's text, which the Terraform provider cannot parse.
    if service_properties.get("task_definition"):
        service_properties["task_definition"] = self.describe_task_definition(
            service_properties["task_definition"]
        ).arn
    service = _update_service(self, service_properties)
    if service.deployments and service.task_definition != old:
        deployment = service.deployments[0]
        deployment["id"] = f"ecs-svc/{ecs.mock_random.randint(0, 32**12)}"
        deployment["taskDefinition"] = service.task_definition
        deployment["createdAt"] = deployment["updatedAt"] = utcnow()
    return service


_create_db_instance = rds.RDSBackend.create_db_instance
_modify_db_instance = rds.RDSBackend.modify_db_instance


def _performance_insights(db, kwargs):
    """Performance Insights settings are kept and described, as in AWS; moto drops them, so
    every plan after the first would modify the instance again."""
    if kwargs.get("enable_performance_insights") is not None:
        db.performance_insights_enabled = str(kwargs["enable_performance_insights"]).lower() == "true"
    if kwargs.get("performance_insights_retention_period") is not None:
        db.performance_insights_retention_period = int(kwargs["performance_insights_retention_period"])
    return db


def create_db_instance(self, db_kwargs):
    return _performance_insights(_create_db_instance(self, db_kwargs), db_kwargs)


def modify_db_instance(self, db_instance_identifier, db_kwargs):
    return _performance_insights(_modify_db_instance(self, db_instance_identifier, db_kwargs), db_kwargs)


_create_service_response = ecs_responses.EC2ContainerServiceResponse.create_service


def create_service_response(self):
    """CreateService keeps the health-check grace period and the AZ rebalancing setting, as
    AWS does; moto drops both (only UpdateService keeps them), so every plan right after a
    stack's first apply wanted to change both services."""
    result = _create_service_response(self)
    service = self.ecs_backend._get_service(
        self._get_param("cluster", "default"), self._get_param("serviceName")
    )
    for param, attr in (
        ("healthCheckGracePeriodSeconds", "health_check_grace_period_seconds"),
        ("availabilityZoneRebalancing", "availability_zone_rebalancing"),
    ):
        value = self._get_param(param)
        if value is not None:
            setattr(service, attr, value)
    return result


def rule_description(self):
    """A rule that names a security group keeps its description there (UserIdGroupPairs),
    and AWS describes it; moto reads only a CIDR range's, so such rules lost theirs."""
    return self.ip_range.get("Description") or self.source_group.get("Description")


def bucket_permission(self, action, resource):
    """A bucket policy's `Deny … when aws:SecureTransport is false` never matches a request
    over TLS, which is how every AWS client reaches S3. moto ignores conditions, so it denies
    everything; here such statements are left out, as for a TLS request (moto itself is
    served over plain HTTP in the tests)."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    if self.policy is None:
        return PermissionResult.NEUTRAL
    document = json.loads(self.policy.decode())
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    document["Statement"] = [
        st
        for st in statements
        if st.get("Condition") != {"Bool": {"aws:SecureTransport": "false"}}
    ]
    if not document["Statement"]:
        return PermissionResult.NEUTRAL
    return IAMPolicy(json.dumps(document)).is_action_permitted(action, resource)


_get_service_quota = servicequotas.ServiceQuotasBackend.get_service_quota


def get_service_quota(self, service_code, quota_code):
    """Service Quotas knows Fargate's On-Demand vCPU quota in AWS (moto only VPC's). Its
    value is the account's: AWS's default for a new account, 6, unless the test's moto was
    started with LEARNTRAC_MOTO_FARGATE_VCPU (an account whose quota differs) — the one
    value here a test chooses, as no account of moto's can have another. Preflight's quota
    check (tests/deploy_faults.rs) relies on it."""
    if (service_code, quota_code) == ("fargate", "L-3032A538"):
        return {
            "ServiceCode": "fargate",
            "ServiceName": "AWS Fargate",
            "QuotaArn": f"arn:aws:servicequotas:{self.region_name}:{self.account_id}:fargate/L-3032A538",
            "QuotaCode": "L-3032A538",
            "QuotaName": "Fargate On-Demand vCPU resource count",
            "Value": float(os.environ.get("LEARNTRAC_MOTO_FARGATE_VCPU", "6")),
            "Unit": "None",
            "Adjustable": True,
            "GlobalQuota": False,
        }
    return _get_service_quota(self, service_code, quota_code)


# ECS's service-linked role is AWSServiceRoleForECS (AWS's name for ecs.amazonaws.com's
# role); moto names it after the host's lowercase first label, AWSServiceRoleForecs, so a
# GetRole of the real name never found the role it made. tests/bootstrap.rs relies on it.
iam.SERVICE_NAME_CONVERSION["ecs"] = "ECS"

ecs.EC2ContainerServiceBackend.update_service = update_service
servicequotas.ServiceQuotasBackend.get_service_quota = get_service_quota
s3.FakeBucket.get_permission = bucket_permission
ecs_responses.EC2ContainerServiceResponse.create_service = create_service_response
ec2_security_groups.SecurityGroupRule.description = property(rule_description)
rds.RDSBackend.create_db_instance = create_db_instance
rds.RDSBackend.modify_db_instance = modify_db_instance
elasticache.ElastiCacheBackend.create_replication_group = create_replication_group
elasticache.ElastiCacheBackend.delete_replication_group = delete_replication_group
elasticache.ElastiCacheBackend.delete_cache_subnet_group = delete_cache_subnet_group
efs.EFSBackend.delete_file_system_policy = delete_file_system_policy
efs_responses.EFSResponse.delete_file_system_policy = delete_file_system_policy_response
elasticache_responses.ElastiCacheResponse.delete_cache_subnet_group = delete_cache_subnet_group_response

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
