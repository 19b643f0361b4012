"""EC2 networking: VPCs, subnets, route tables and routes, gateways, elastic IPs, security
groups and their rules (`aws:vpc/*`), VPC endpoints, flow logs, launch templates.

AWS gives VPC parts no name: the sandbox finds one again by the `SANDBOX_TAG` tag holding its
physical name. Security groups, like the provider makes them, hold exactly the declared rules.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from mlplat.aws.realizing import (
    SANDBOX_TAG,
    Reader,
    RealizeContext,
    RealizeError,
    Registration,
    drop_empty,
    exists,
    pascal,
    tag_list,
    tag_spec,
)
from mlplat.aws.registry import AwsType, Fake, Outputs, Service

# --- the plan engine's fakes


# kind -> (id prefix, the ARN's resource type; None: the provider's state has no ARN). The ARN
# shapes are those of the EC2 resource types in the Service Authorization Reference
# (`arn:aws:ec2:<region>:<account>:<resource type>/<id>`).
_EC2_IDS: dict[str, tuple[str, str | None]] = {
    "Vpc": ("vpc", "vpc"),
    "Subnet": ("subnet", "subnet"),
    "SecurityGroup": ("sg", "security-group"),
    "DefaultSecurityGroup": ("sg", "security-group"),
    "RouteTable": ("rtb", "route-table"),
    "RouteTableAssociation": ("rtbassoc", None),
    "InternetGateway": ("igw", "internet-gateway"),
    "NatGateway": ("nat", None),
    "Eip": ("eipalloc", "elastic-ip"),
    "VpcEndpoint": ("vpce", "vpc-endpoint"),
    "LaunchTemplate": ("lt", "launch-template"),
    "FlowLog": ("fl", "vpc-flow-log"),
    "SecurityGroupIngressRule": ("sgr", "security-group-rule"),
    "SecurityGroupEgressRule": ("sgr", "security-group-rule"),
}


def _fake_ec2(f: Fake) -> Outputs:
    if f.kind == "Route":  # the provider's id: r-<route table>1080289494 (a hash of the CIDR)
        return f"r-{f.input('routeTableId') or 'rtb'}{int(f.digest(8), 16) % 10**10}", {}
    prefix, arn_type = _EC2_IDS.get(f.kind, (f.kind.lower(), f.kind.lower()))
    ident = f"{prefix}-{f.digest(17)}"
    out: dict[str, Any] = {"arn": f.arn("ec2", f"{arn_type}/{ident}")} if arn_type else {}
    if f.kind == "LaunchTemplate":
        out["latestVersion"] = 1
    if f.kind == "Vpc":
        out["defaultSecurityGroupId"] = f"sg-{f.digest(17, 'sg')}"
        out["mainRouteTableId"] = f"rtb-{f.digest(17, 'rt')}"
    if f.kind == "VpcEndpoint" and f.inputs.get("vpcEndpointType", "Gateway") == "Gateway":
        # a gateway endpoint's destinations, what security group rules point at
        out["prefixListId"] = f"pl-{f.digest(8, 'pl')}"
    return ident, out


# --- the sandbox's realizers and readers


def _find_tagged(
    ctx: RealizeContext, method: str, key: str, physical: str
) -> dict[str, Any] | None:
    response = getattr(ctx.client("ec2"), method)(
        Filters=[{"Name": f"tag:{SANDBOX_TAG}", "Values": [physical]}]
    )
    items = response[key]
    return dict(items[0]) if items else None


def _ec2_reader(method: str, ids_key: str, key: str) -> Reader:
    def read(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
        items = getattr(ctx.client("ec2"), method)(**{ids_key: [ident]})[key]
        if not items:
            raise RealizeError(f"{ident} not found")
        return items[0]

    return read


def _vpc(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    ec2 = ctx.client("ec2")
    physical = reg.physical(key="__none__")
    vpc = _find_tagged(ctx, "describe_vpcs", "Vpcs", physical)
    if vpc is None:
        vpc = ec2.create_vpc(
            CidrBlock=reg.require("cidrBlock"),
            InstanceTenancy=reg.get("instanceTenancy", "default"),
            TagSpecifications=tag_spec("vpc", reg.get("tags"), physical),
        )["Vpc"]
    vpc_id = vpc["VpcId"]
    for key, attribute in (
        ("enableDnsHostnames", "EnableDnsHostnames"),
        ("enableDnsSupport", "EnableDnsSupport"),
    ):
        if reg.get(key) is not None:
            ec2.modify_vpc_attribute(VpcId=vpc_id, **{attribute: {"Value": bool(reg.get(key))}})
    groups = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "group-name", "Values": ["default"]},
        ]
    )
    tables = ec2.describe_route_tables(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "association.main", "Values": ["true"]},
        ]
    )
    acls = ec2.describe_network_acls(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "default", "Values": ["true"]}]
    )
    main_table = tables["RouteTables"][0]["RouteTableId"] if tables["RouteTables"] else ""
    return vpc_id, {
        "arn": ctx.arn("ec2", f"vpc/{vpc_id}"),
        "cidrBlock": vpc["CidrBlock"],
        "ownerId": ctx.account_id,
        "defaultSecurityGroupId": groups["SecurityGroups"][0]["GroupId"]
        if groups["SecurityGroups"]
        else "",
        "mainRouteTableId": main_table,
        "defaultRouteTableId": main_table,
        "defaultNetworkAclId": acls["NetworkAcls"][0]["NetworkAclId"]
        if acls["NetworkAcls"]
        else "",
    }


def _subnet(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    ec2 = ctx.client("ec2")
    physical = reg.physical(key="__none__")
    subnet = _find_tagged(ctx, "describe_subnets", "Subnets", physical)
    if subnet is None:
        subnet = ec2.create_subnet(
            **drop_empty(
                {
                    "VpcId": reg.require("vpcId"),
                    "CidrBlock": reg.require("cidrBlock"),
                    "AvailabilityZone": reg.get("availabilityZone"),
                    "AvailabilityZoneId": reg.get("availabilityZoneId"),
                    "TagSpecifications": tag_spec("subnet", reg.get("tags"), physical),
                }
            )
        )["Subnet"]
    if reg.get("mapPublicIpOnLaunch") is not None:
        ec2.modify_subnet_attribute(
            SubnetId=subnet["SubnetId"],
            MapPublicIpOnLaunch={"Value": bool(reg.get("mapPublicIpOnLaunch"))},
        )
    return subnet["SubnetId"], {
        "arn": ctx.arn("ec2", f"subnet/{subnet['SubnetId']}"),
        "availabilityZone": subnet["AvailabilityZone"],
        "availabilityZoneId": subnet.get("AvailabilityZoneId", ""),
        "ownerId": ctx.account_id,
    }


_ROUTE_TARGETS = {
    "gatewayId": "GatewayId",
    "natGatewayId": "NatGatewayId",
    "vpcEndpointId": "VpcEndpointId",
    "networkInterfaceId": "NetworkInterfaceId",
    "transitGatewayId": "TransitGatewayId",
    "vpcPeeringConnectionId": "VpcPeeringConnectionId",
    "egressOnlyGatewayId": "EgressOnlyInternetGatewayId",
}


def _ensure_route(ctx: RealizeContext, table_id: str, route: Mapping[str, Any]) -> str:
    ec2 = ctx.client("ec2")
    destination = route.get("cidrBlock") or route.get("destinationCidrBlock")
    if not destination:
        raise RealizeError(f"route in {table_id}: only IPv4 CIDR destinations are realized")
    table = ec2.describe_route_tables(RouteTableIds=[table_id])["RouteTables"][0]
    if not any(r.get("DestinationCidrBlock") == destination for r in table.get("Routes", [])):
        targets = {boto: route[key] for key, boto in _ROUTE_TARGETS.items() if route.get(key)}
        ec2.create_route(RouteTableId=table_id, DestinationCidrBlock=destination, **targets)
    return str(destination)


def _route_table(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    physical = reg.physical(key="__none__")
    table = _find_tagged(ctx, "describe_route_tables", "RouteTables", physical)
    if table is None:
        table = ctx.client("ec2").create_route_table(
            VpcId=reg.require("vpcId"),
            TagSpecifications=tag_spec("route-table", reg.get("tags"), physical),
        )["RouteTable"]
    for route in reg.get("routes", []):
        _ensure_route(ctx, table["RouteTableId"], route)
    return table["RouteTableId"], {
        "arn": ctx.arn("ec2", f"route-table/{table['RouteTableId']}"),
        "ownerId": ctx.account_id,
    }


def _read_route(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
    table = ctx.client("ec2").describe_route_tables(RouteTableIds=[state["routeTableId"]])[
        "RouteTables"
    ][0]
    found = [
        r for r in table["Routes"] if r.get("DestinationCidrBlock") == state["destinationCidrBlock"]
    ]
    if not found:
        raise RealizeError(f"route {ident} not found")
    return found[0]


def _route(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    table_id = str(reg.require("routeTableId"))
    destination = _ensure_route(ctx, table_id, reg.inputs)
    digest = int(hashlib.sha256(destination.encode()).hexdigest()[:8], 16)
    return f"r-{table_id}{digest}", {"state": "active", "origin": "CreateRoute"}


def _read_association(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    tables = ctx.client("ec2").describe_route_tables(
        Filters=[{"Name": "association.route-table-association-id", "Values": [ident]}]
    )["RouteTables"]
    if not tables:
        raise RealizeError(f"route table association {ident} not found")
    return tables[0]


def _route_table_association(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    ec2 = ctx.client("ec2")
    table_id = str(reg.require("routeTableId"))
    subnet = reg.get("subnetId")
    if not subnet:
        raise RealizeError(f"{reg.name}: only subnet associations are realized")
    tables = ec2.describe_route_tables(
        Filters=[{"Name": "association.subnet-id", "Values": [subnet]}]
    )["RouteTables"]
    for table in tables:
        for assoc in table.get("Associations", []):
            if assoc.get("SubnetId") == subnet:
                if table["RouteTableId"] == table_id:
                    return str(assoc["RouteTableAssociationId"]), {}
                new = ec2.replace_route_table_association(
                    AssociationId=assoc["RouteTableAssociationId"], RouteTableId=table_id
                )
                return str(new["NewAssociationId"]), {}
    assoc_id = ec2.associate_route_table(RouteTableId=table_id, SubnetId=subnet)["AssociationId"]
    return str(assoc_id), {}


def _permission(rule: Mapping[str, Any], own_group: str | None = None) -> dict[str, Any]:
    protocol = str(rule.get("protocol") or rule.get("ipProtocol") or "-1")
    protocol = "-1" if protocol in ("all", "-1") else protocol
    permission: dict[str, Any] = {"IpProtocol": protocol}
    if protocol != "-1":
        permission["FromPort"] = rule.get("fromPort")
        permission["ToPort"] = rule.get("toPort")
    description = rule.get("description")
    extra = {"Description": description} if description else {}
    cidrs = rule.get("cidrBlocks") or ([rule["cidrIpv4"]] if rule.get("cidrIpv4") else [])
    if cidrs:
        permission["IpRanges"] = [{"CidrIp": c, **extra} for c in cidrs]
    v6 = rule.get("ipv6CidrBlocks") or ([rule["cidrIpv6"]] if rule.get("cidrIpv6") else [])
    if v6:
        permission["Ipv6Ranges"] = [{"CidrIpv6": c, **extra} for c in v6]
    groups = list(rule.get("securityGroups") or [])
    if rule.get("referencedSecurityGroupId"):
        groups.append(rule["referencedSecurityGroupId"])
    if rule.get("self") and own_group:
        groups.append(own_group)
    if groups:
        permission["UserIdGroupPairs"] = [{"GroupId": g, **extra} for g in groups]
    prefixes = rule.get("prefixListIds") or (
        [rule["prefixListId"]] if rule.get("prefixListId") else []
    )
    if prefixes:
        permission["PrefixListIds"] = [{"PrefixListId": p, **extra} for p in prefixes]
    return permission


def _rule_keys(permission: Mapping[str, Any]) -> set[tuple[Any, ...]]:
    """Each (protocol, from, to, source) a permission grants: how rules are compared."""
    base = (permission.get("IpProtocol"), permission.get("FromPort"), permission.get("ToPort"))
    keys = set()
    for r in permission.get("IpRanges", []):
        keys.add((*base, r["CidrIp"]))
    for r in permission.get("Ipv6Ranges", []):
        keys.add((*base, r["CidrIpv6"]))
    for r in permission.get("UserIdGroupPairs", []):
        keys.add((*base, r["GroupId"]))
    for r in permission.get("PrefixListIds", []):
        keys.add((*base, r["PrefixListId"]))
    return keys


def _normalize_permission(permission: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(permission)
    if out.get("IpProtocol") == "-1":
        out.pop("FromPort", None)
        out.pop("ToPort", None)
    return out


def _reconcile_rules(
    ctx: RealizeContext,
    group_id: str,
    direction: str,
    wanted: list[dict[str, Any]],
    current: list[dict[str, Any]],
) -> None:
    ec2 = ctx.client("ec2")
    have = (
        set().union(*(_rule_keys(_normalize_permission(p)) for p in current)) if current else set()
    )
    want = set().union(*(_rule_keys(p) for p in wanted)) if wanted else set()
    authorize = [p for p in wanted if not _rule_keys(p) <= have]
    revoke = [
        _normalize_permission(p)
        for p in current
        if not _rule_keys(_normalize_permission(p)) <= want
    ]
    call = "ingress" if direction == "ingress" else "egress"
    if revoke:
        getattr(ec2, f"revoke_security_group_{call}")(GroupId=group_id, IpPermissions=revoke)
    if authorize:
        getattr(ec2, f"authorize_security_group_{call}")(GroupId=group_id, IpPermissions=authorize)


def _security_group(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    ec2 = ctx.client("ec2")
    name = reg.physical(max_len=255)
    vpc_id = reg.require("vpcId")
    found = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": [name]}]
    )
    if found["SecurityGroups"]:
        group = found["SecurityGroups"][0]
    else:
        group_id = ec2.create_security_group(
            GroupName=name,
            VpcId=vpc_id,
            Description=reg.get("description", "Managed by Pulumi"),
            TagSpecifications=[
                {"ResourceType": "security-group", "Tags": tag_list(reg.get("tags"))}
            ]
            if reg.get("tags")
            else [],
        )["GroupId"]
        group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    group_id = group["GroupId"]
    # Like the provider: the rules are exactly the ones declared (AWS's default allow-all egress
    # is removed unless declared).
    if reg.inputs.get("ingress") is not None:
        _reconcile_rules(
            ctx,
            group_id,
            "ingress",
            [_permission(r, group_id) for r in reg.get("ingress", [])],
            group.get("IpPermissions", []),
        )
    if reg.inputs.get("egress") is not None or not found["SecurityGroups"]:
        _reconcile_rules(
            ctx,
            group_id,
            "egress",
            [_permission(r, group_id) for r in reg.get("egress", [])],
            group.get("IpPermissionsEgress", []),
        )
    return group_id, {
        "arn": ctx.arn("ec2", f"security-group/{group_id}"),
        "name": name,
        "ownerId": ctx.account_id,
    }


def _default_security_group(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    """Adopt the VPC's default group; like the provider, leave exactly the declared rules."""
    ec2 = ctx.client("ec2")
    vpc_id = reg.require("vpcId")
    group = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "group-name", "Values": ["default"]},
        ]
    )["SecurityGroups"][0]
    group_id = group["GroupId"]
    _reconcile_rules(
        ctx,
        group_id,
        "ingress",
        [_permission(r, group_id) for r in reg.get("ingress", [])],
        group.get("IpPermissions", []),
    )
    _reconcile_rules(
        ctx,
        group_id,
        "egress",
        [_permission(r, group_id) for r in reg.get("egress", [])],
        group.get("IpPermissionsEgress", []),
    )
    if reg.get("tags"):
        ec2.create_tags(Resources=[group_id], Tags=tag_list(reg.get("tags")))
    return group_id, {
        "arn": ctx.arn("ec2", f"security-group/{group_id}"),
        "name": "default",
        "ownerId": ctx.account_id,
    }


def _launch_template(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    ec2 = ctx.client("ec2")
    name = reg.physical(max_len=128)
    found = exists(
        lambda: ec2.describe_launch_templates(LaunchTemplateNames=[name]),
        "InvalidLaunchTemplateName.NotFoundException",
    )
    if found and found["LaunchTemplates"]:
        template = found["LaunchTemplates"][0]
    else:
        data = {
            k: v
            for k, v in reg.inputs.items()
            if k
            not in (
                "name",
                "namePrefix",
                "tags",
                "description",
                "defaultVersion",
                "updateDefaultVersion",
                "region",
            )
        }
        template = ec2.create_launch_template(
            LaunchTemplateName=name,
            LaunchTemplateData=pascal(
                data, {"ebs": "Ebs", "httpPutResponseHopLimit": "HttpPutResponseHopLimit"}
            ),
            TagSpecifications=[
                {"ResourceType": "launch-template", "Tags": tag_list(reg.get("tags"))}
            ]
            if reg.get("tags")
            else [],
        )["LaunchTemplate"]
    ident = template["LaunchTemplateId"]
    return ident, {
        "name": name,
        "arn": ctx.arn("ec2", f"launch-template/{ident}"),
        "latestVersion": template.get("LatestVersionNumber", 1),
        "defaultVersion": template.get("DefaultVersionNumber", 1),
    }


def _read_sg_rule(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    found = ctx.client("ec2").describe_security_group_rules(SecurityGroupRuleIds=[ident])
    if not found["SecurityGroupRules"]:
        raise RealizeError(f"security group rule {ident} not found")
    return found["SecurityGroupRules"][0]


def _sg_rule(ctx: RealizeContext, reg: Registration, egress: bool) -> tuple[str, dict[str, Any]]:
    ec2 = ctx.client("ec2")
    group_id = str(reg.require("securityGroupId"))
    permission = _permission(reg.inputs)
    wanted = _rule_keys(permission)
    if len(wanted) != 1:  # the provider requires exactly one of them
        raise RealizeError(
            f"{reg.name}: a security group rule needs exactly one non-empty cidrIpv4, cidrIpv6, "
            f"prefixListId or referencedSecurityGroupId; got {len(wanted)}"
        )
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])[
        "SecurityGroupRules"
    ]
    for rule in rules:
        if bool(rule.get("IsEgress")) != egress:
            continue
        source = (
            rule.get("CidrIpv4")
            or rule.get("CidrIpv6")
            or rule.get("PrefixListId")
            or (rule.get("ReferencedGroupInfo") or {}).get("GroupId")
        )
        protocol = rule.get("IpProtocol")
        ports = (None, None) if protocol == "-1" else (rule.get("FromPort"), rule.get("ToPort"))
        if {(protocol, *ports, source)} == wanted:
            rule_id = str(rule["SecurityGroupRuleId"])
            break
    else:
        call = (
            ec2.authorize_security_group_egress if egress else ec2.authorize_security_group_ingress
        )
        response = call(
            GroupId=group_id,
            IpPermissions=[permission],
            **(
                {
                    "TagSpecifications": [
                        {"ResourceType": "security-group-rule", "Tags": tag_list(reg.get("tags"))}
                    ]
                }
                if reg.get("tags")
                else {}
            ),
        )
        rule_id = str(response["SecurityGroupRules"][0]["SecurityGroupRuleId"])
    return rule_id, {
        "securityGroupRuleId": rule_id,
        "arn": ctx.arn("ec2", f"security-group-rule/{rule_id}"),
    }


def _sg_ingress(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    return _sg_rule(ctx, reg, egress=False)


def _sg_egress(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    return _sg_rule(ctx, reg, egress=True)


def _vpc_endpoint(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    physical = reg.physical(key="__none__")
    endpoint = _find_tagged(ctx, "describe_vpc_endpoints", "VpcEndpoints", physical)
    if endpoint is None:
        endpoint = ctx.client("ec2").create_vpc_endpoint(
            **drop_empty(
                {
                    "VpcId": reg.require("vpcId"),
                    "ServiceName": reg.require("serviceName"),
                    "VpcEndpointType": reg.get("vpcEndpointType", "Gateway"),
                    "RouteTableIds": reg.get("routeTableIds"),
                    "SubnetIds": reg.get("subnetIds"),
                    "SecurityGroupIds": reg.get("securityGroupIds"),
                    "PrivateDnsEnabled": reg.get("privateDnsEnabled"),
                    "PolicyDocument": reg.get("policy"),
                    "TagSpecifications": tag_spec("vpc-endpoint", reg.get("tags"), physical),
                }
            )
        )["VpcEndpoint"]
    ident = endpoint["VpcEndpointId"]
    return ident, {
        "arn": ctx.arn("ec2", f"vpc-endpoint/{ident}"),
        "ownerId": ctx.account_id,
        "state": endpoint.get("State", "available"),
        "networkInterfaceIds": endpoint.get("NetworkInterfaceIds", []),
        "prefixListId": _service_prefix_list(ctx, endpoint),
    }


def _service_prefix_list(ctx: RealizeContext, endpoint: Mapping[str, Any]) -> str:
    """A gateway endpoint's `prefixListId`: the AWS-managed prefix list of its service (what the
    provider reads; moto's DescribeVpcEndpoints does not return it). Interface endpoints have
    none."""
    if endpoint.get("VpcEndpointType", "Gateway") != "Gateway":
        return ""
    if endpoint.get("PrefixListId"):
        return str(endpoint["PrefixListId"])
    service = str(endpoint["ServiceName"])
    lists = ctx.client("ec2").describe_prefix_lists(
        Filters=[{"Name": "prefix-list-name", "Values": [service]}]
    )["PrefixLists"]
    if not lists:
        raise RealizeError(f"no AWS-managed prefix list for gateway endpoint service {service}")
    return str(lists[0]["PrefixListId"])


def _flow_log(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    physical = reg.physical(key="__none__")
    flow = _find_tagged(ctx, "describe_flow_logs", "FlowLogs", physical)
    if flow is not None:
        ident = str(flow["FlowLogId"])
    else:
        for key, kind in (("vpcId", "VPC"), ("subnetId", "Subnet"), ("eniId", "NetworkInterface")):
            if reg.get(key):
                resource_type, resource_id = kind, reg.get(key)
                break
        else:
            raise RealizeError(f"{reg.name}: only VPC, subnet and ENI flow logs are realized")
        response = ctx.client("ec2").create_flow_logs(
            **drop_empty(
                {
                    "ResourceType": resource_type,
                    "ResourceIds": [resource_id],
                    "TrafficType": reg.get("trafficType", "ALL"),
                    "LogDestinationType": reg.get("logDestinationType", "cloud-watch-logs"),
                    "LogDestination": reg.get("logDestination"),
                    "DeliverLogsPermissionArn": reg.get("iamRoleArn"),
                    "LogFormat": reg.get("logFormat"),
                    "MaxAggregationInterval": reg.get("maxAggregationInterval", 600),
                    "TagSpecifications": tag_spec("vpc-flow-log", reg.get("tags"), physical),
                }
            )
        )
        if response.get("Unsuccessful"):
            raise RealizeError(f"create_flow_logs: {response['Unsuccessful']}")
        ident = str(response["FlowLogIds"][0])
    return ident, {"arn": ctx.arn("ec2", f"vpc-flow-log/{ident}")}


def _internet_gateway(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    ec2 = ctx.client("ec2")
    physical = reg.physical(key="__none__")
    gateway = _find_tagged(ctx, "describe_internet_gateways", "InternetGateways", physical)
    if gateway is None:
        gateway = ec2.create_internet_gateway(
            TagSpecifications=tag_spec("internet-gateway", reg.get("tags"), physical)
        )["InternetGateway"]
    ident = gateway["InternetGatewayId"]
    vpc_id = reg.get("vpcId")
    if vpc_id and not any(a.get("VpcId") == vpc_id for a in gateway.get("Attachments", [])):
        ec2.attach_internet_gateway(InternetGatewayId=ident, VpcId=vpc_id)
    return ident, {"arn": ctx.arn("ec2", f"internet-gateway/{ident}"), "ownerId": ctx.account_id}


def _read_eip(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("ec2").describe_addresses(AllocationIds=[ident])["Addresses"][0]


def _eip(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    physical = reg.physical(key="__none__")
    address = _find_tagged(ctx, "describe_addresses", "Addresses", physical)
    if address is None:
        address = ctx.client("ec2").allocate_address(
            Domain="vpc", TagSpecifications=tag_spec("elastic-ip", reg.get("tags"), physical)
        )
    ident = address["AllocationId"]
    return ident, {
        "allocationId": ident,
        "publicIp": address.get("PublicIp", ""),
        "domain": "vpc",
        "arn": ctx.arn("ec2", f"elastic-ip/{ident}"),
    }


def _nat_gateway(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    physical = reg.physical(key="__none__")
    gateway = _find_tagged(ctx, "describe_nat_gateways", "NatGateways", physical)
    if gateway is None:
        gateway = ctx.client("ec2").create_nat_gateway(
            **drop_empty(
                {
                    "SubnetId": reg.require("subnetId"),
                    "AllocationId": reg.get("allocationId"),
                    "ConnectivityType": reg.get("connectivityType", "public"),
                    "TagSpecifications": tag_spec("natgateway", reg.get("tags"), physical),
                }
            )
        )["NatGateway"]
    ident = gateway["NatGatewayId"]
    return ident, {"arn": ctx.arn("ec2", f"natgateway/{ident}")}


# --- the registry entries

_DESCRIBE_SECURITY_GROUPS = _ec2_reader("describe_security_groups", "GroupIds", "SecurityGroups")

SERVICE = Service(
    owns=("ec2", "vpc"),
    types=(
        AwsType(
            "aws:ec2/vpc:Vpc",
            fake=_fake_ec2,
            realize=_vpc,
            read=_ec2_reader("describe_vpcs", "VpcIds", "Vpcs"),
        ),
        AwsType(
            "aws:ec2/subnet:Subnet",
            fake=_fake_ec2,
            realize=_subnet,
            read=_ec2_reader("describe_subnets", "SubnetIds", "Subnets"),
        ),
        AwsType(
            "aws:ec2/routeTable:RouteTable",
            fake=_fake_ec2,
            realize=_route_table,
            read=_ec2_reader("describe_route_tables", "RouteTableIds", "RouteTables"),
        ),
        AwsType("aws:ec2/route:Route", fake=_fake_ec2, realize=_route, read=_read_route),
        AwsType(
            "aws:ec2/routeTableAssociation:RouteTableAssociation",
            fake=_fake_ec2,
            realize=_route_table_association,
            read=_read_association,
        ),
        AwsType(
            "aws:ec2/securityGroup:SecurityGroup",
            fake=_fake_ec2,
            realize=_security_group,
            read=_DESCRIBE_SECURITY_GROUPS,
        ),
        AwsType(
            "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
            fake=_fake_ec2,
            realize=_default_security_group,
            read=_DESCRIBE_SECURITY_GROUPS,
        ),
        AwsType(
            "aws:ec2/launchTemplate:LaunchTemplate",
            fake=_fake_ec2,
            realize=_launch_template,
            read=_ec2_reader("describe_launch_templates", "LaunchTemplateIds", "LaunchTemplates"),
        ),
        AwsType(
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            fake=_fake_ec2,
            realize=_sg_ingress,
            read=_read_sg_rule,
        ),
        AwsType(
            "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
            fake=_fake_ec2,
            realize=_sg_egress,
            read=_read_sg_rule,
        ),
        AwsType(
            "aws:ec2/vpcEndpoint:VpcEndpoint",
            fake=_fake_ec2,
            realize=_vpc_endpoint,
            read=_ec2_reader("describe_vpc_endpoints", "VpcEndpointIds", "VpcEndpoints"),
        ),
        AwsType(
            "aws:ec2/flowLog:FlowLog",
            fake=_fake_ec2,
            realize=_flow_log,
            read=_ec2_reader("describe_flow_logs", "FlowLogIds", "FlowLogs"),
        ),
        AwsType(
            "aws:ec2/internetGateway:InternetGateway",
            fake=_fake_ec2,
            realize=_internet_gateway,
            read=_ec2_reader(
                "describe_internet_gateways", "InternetGatewayIds", "InternetGateways"
            ),
        ),
        AwsType("aws:ec2/eip:Eip", fake=_fake_ec2, realize=_eip, read=_read_eip),
        AwsType(
            "aws:ec2/natGateway:NatGateway",
            fake=_fake_ec2,
            realize=_nat_gateway,
            read=_ec2_reader("describe_nat_gateways", "NatGatewayIds", "NatGateways"),
        ),
    ),
    # every EC2 id has the same shape (`<prefix>-<17 hex>`), listed here or not
    default_fakes={"ec2": _fake_ec2},
)
