"""Hand-written Pulumi programs of raw pulumi_aws resources, shaped like the platform's components,
covering every type token the sandbox realizes (the components themselves land separately)."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

TAGS = {
    "owner": "ml-team",
    "environment": "local",
    "cost-center": "local",
    "project": "ml-platform",
    "stack": "local",
}
VPC_CIDR = "10.40.0.0/16"
PACKAGE_GROUP = "churn-sandbox"
PIPELINE = "churn-sandbox-pipeline"
PIPELINE_DEFINITION = json.dumps(
    {
        "Version": "2020-12-01",
        "Metadata": {},
        "Parameters": [{"Name": "WindowDays", "Type": "String", "DefaultValue": "30"}],
        "Steps": [
            {
                "Name": "Refused",
                "Type": "Fail",
                "Arguments": {"ErrorMessage": {"Get": "Parameters.WindowDays"}},
            }
        ],
    }
)
DASHBOARD = "ml-platform-sandbox"
KEY_ALIAS = "alias/ml-platform-sandbox-lake"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"

TRUST = {
    service: json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": f"{service}.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )
    for service in ("firehose", "sagemaker", "vpc-flow-logs")
}


def _doc(*statements: dict[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _deny_insecure(bucket: aws.s3.Bucket) -> pulumi.Output[str]:
    return pulumi.Output.all(bucket.arn).apply(
        lambda a: _doc(
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [a[0], f"{a[0]}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        )
    )


class Lake(pulumi.ComponentResource):
    """A component, as the platform's are: it is recorded, never realized."""

    def __init__(self, name: str) -> None:
        super().__init__("mlplatform:test:Lake", name, None, None)
        child = pulumi.ResourceOptions(parent=self)
        self.key = aws.kms.Key(
            f"{name}-key",
            description="lake key",
            enable_key_rotation=True,
            deletion_window_in_days=7,
            tags=TAGS,
            opts=child,
        )
        aws.kms.Alias(
            f"{name}-key-alias", name=KEY_ALIAS, target_key_id=self.key.key_id, opts=child
        )
        aws.kms.KeyPolicy(
            f"{name}-key-policy",
            key_id=self.key.key_id,
            policy=_doc(
                {
                    "Sid": "Root",
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ),
            opts=child,
        )
        self.logs = aws.s3.Bucket(f"{name}-access-logs", force_destroy=True, tags=TAGS, opts=child)
        self.raw = aws.s3.Bucket(
            f"{name}-raw", object_lock_enabled=True, force_destroy=True, tags=TAGS, opts=child
        )
        bucket = self.raw.id
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-raw-sse",
            bucket=bucket,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": self.key.arn,
                    },
                    "bucket_key_enabled": True,
                }
            ],
            opts=child,
        )
        aws.s3.BucketVersioning(
            f"{name}-raw-versioning",
            bucket=bucket,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-raw-pab",
            bucket=bucket,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-raw-ownership",
            bucket=bucket,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-raw-policy", bucket=bucket, policy=_deny_insecure(self.raw), opts=child
        )
        # S3 server access logging needs the target bucket to let the logging service write.
        # The lake's way: TLS-only (Principal "*"), delivery under the zone's prefix only, from
        # this account's bucket only, and nothing ordering the logging after the policy.
        aws.s3.BucketPolicy(
            f"{name}-access-logs-policy",
            bucket=self.logs.id,
            policy=pulumi.Output.all(self.logs.arn, self.raw.arn).apply(
                lambda arns: _doc(
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [arns[0], f"{arns[0]}/*"],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                    {
                        "Sid": "S3ServerAccessLogDelivery",
                        "Effect": "Allow",
                        "Principal": {"Service": "logging.s3.amazonaws.com"},
                        "Action": "s3:PutObject",
                        "Resource": [f"{arns[0]}/raw/*", f"{arns[0]}/curated/*"],
                        "Condition": {
                            "ArnLike": {"aws:SourceArn": [arns[1]]},
                            "StringEquals": {"aws:SourceAccount": "123456789012"},
                        },
                    },
                )
            ),
            opts=child,
        )
        aws.s3.BucketLogging(
            f"{name}-raw-logging",
            bucket=bucket,
            target_bucket=self.logs.id,
            target_prefix="raw/",
            target_object_key_format={
                "partitioned_prefix": {"partition_date_source": "EventTime"},
            },
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-raw-lifecycle",
            bucket=bucket,
            rules=[
                {
                    "id": "tiering",
                    "status": "Enabled",
                    "filter": {"prefix": "events/"},
                    "transitions": [
                        {"days": 30, "storage_class": "STANDARD_IA"},
                        {"days": 90, "storage_class": "GLACIER"},
                    ],
                    "noncurrent_version_expiration": {"noncurrent_days": 90},
                },
                {
                    "id": "multipart",
                    "status": "Enabled",
                    "filter": {},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
                },
            ],
            opts=child,
        )
        aws.s3.BucketObjectLockConfiguration(
            f"{name}-raw-lock",
            bucket=bucket,
            rule={"default_retention": {"mode": "GOVERNANCE", "days": 30}},
            opts=child,
        )
        self.database = aws.glue.CatalogDatabase(f"{name}-db", description="the lake", opts=child)
        self.table = aws.glue.CatalogTable(
            f"{name}-events",
            database_name=self.database.name,
            table_type="EXTERNAL_TABLE",
            parameters={"classification": "parquet", "parquet.compression": "SNAPPY"},
            partition_keys=[{"name": "dt", "type": "string"}],
            storage_descriptor={
                "location": pulumi.Output.concat("s3://", self.raw.bucket, "/events/"),
                "input_format": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                "output_format": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                "ser_de_info": {
                    "serialization_library": PARQUET_SERDE,
                    "parameters": {"serialization.format": "1"},
                },
                "columns": [
                    {"name": "customer_id", "type": "string"},
                    {"name": "tenure_months", "type": "int"},
                    {"name": "monthly_charges", "type": "double"},
                ],
            },
            opts=child,
        )
        self.workgroup = aws.athena.Workgroup(
            f"{name}-analytics",
            force_destroy=True,
            configuration={
                "enforce_workgroup_configuration": True,
                "publish_cloudwatch_metrics_enabled": True,
                "bytes_scanned_cutoff_per_query": 10 * 1024**3,
                "result_configuration": {
                    "output_location": pulumi.Output.concat("s3://", self.raw.bucket, "/athena/"),
                    "encryption_configuration": {
                        "encryption_option": "SSE_KMS",
                        "kms_key_arn": self.key.arn,
                    },
                },
            },
            tags=TAGS,
            opts=child,
        )
        self.register_outputs({})


def platform_program() -> None:
    """~60 resources across every realized type, wired by outputs, plus some not emulated."""
    lake = Lake("lake")
    # ingestion
    firehose_role = aws.iam.Role("ingest-role", assume_role_policy=TRUST["firehose"], tags=TAGS)
    firehose_policy = aws.iam.Policy(
        "ingest-policy",
        policy=lake.raw.arn.apply(
            lambda arn: _doc(
                {
                    "Effect": "Allow",
                    "Action": ["s3:PutObject", "s3:GetBucketLocation"],
                    "Resource": [arn, f"{arn}/*"],
                }
            )
        ),
    )
    aws.iam.RolePolicyAttachment(
        "ingest-attach", role=firehose_role.name, policy_arn=firehose_policy.arn
    )
    aws.iam.RolePolicy(
        "ingest-glue",
        role=firehose_role.id,
        policy=_doc({"Effect": "Allow", "Action": ["glue:GetTableVersions"], "Resource": "*"}),
    )
    ingest_logs = aws.cloudwatch.LogGroup("ingest-logs", retention_in_days=30, tags=TAGS)
    aws.cloudwatch.LogStream("ingest-log-stream", log_group_name=ingest_logs.name, name="delivery")
    aws.cloudwatch.LogMetricFilter(
        "ingest-errors",
        log_group_name=ingest_logs.name,
        pattern='{ $.errorCode = "*" }',
        metric_transformation={
            "name": "DeliveryErrors",
            "namespace": "MLPlatform/Ingest",
            "value": "1",
            "default_value": "0",
            "unit": "Count",
        },
    )
    stream = aws.kinesis.FirehoseDeliveryStream(
        "ingest",
        destination="extended_s3",
        server_side_encryption={
            "enabled": True,
            "key_type": "CUSTOMER_MANAGED_CMK",
            "key_arn": lake.key.arn,
        },
        extended_s3_configuration={
            "role_arn": firehose_role.arn,
            "bucket_arn": lake.raw.arn,
            "prefix": "events/dt=!{timestamp:yyyy-MM-dd}/",
            "error_output_prefix": "errors/!{firehose:error-output-type}/",
            "buffering_size": 128,
            "buffering_interval": 300,
            "kms_key_arn": lake.key.arn,
            "cloudwatch_logging_options": {
                "enabled": True,
                "log_group_name": ingest_logs.name,
                "log_stream_name": "delivery",
            },
            "data_format_conversion_configuration": {
                "input_format_configuration": {"deserializer": {"open_x_json_ser_de": {}}},
                "output_format_configuration": {
                    "serializer": {"parquet_ser_de": {"compression": "SNAPPY"}}
                },
                "schema_configuration": {
                    "database_name": lake.database.name,
                    "table_name": lake.table.name,
                    "role_arn": firehose_role.arn,
                },
            },
        },
        tags=TAGS,
    )
    # on-call
    topic = aws.sns.Topic("oncall", kms_master_key_id=lake.key.id, tags=TAGS)
    queue = aws.sqs.Queue("oncall-queue", message_retention_seconds=86400, tags=TAGS)
    aws.sqs.QueuePolicy(
        "oncall-queue-policy",
        queue_url=queue.url,
        policy=pulumi.Output.all(queue.arn, topic.arn).apply(
            lambda a: _doc(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": a[0],
                    "Condition": {"ArnEquals": {"aws:SourceArn": a[1]}},
                }
            )
        ),
    )
    aws.sns.TopicPolicy(
        "oncall-policy",
        arn=topic.arn,
        policy=topic.arn.apply(
            lambda arn: _doc(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": "sns:Publish",
                    "Resource": arn,
                }
            )
        ),
    )
    aws.sns.TopicSubscription(
        "oncall-sqs",
        topic=topic.arn,
        protocol="sqs",
        endpoint=queue.arn,
        raw_message_delivery=False,
    )
    # serving
    models = aws.s3.Bucket("models", force_destroy=True, tags=TAGS)
    sm_role = aws.iam.Role("serving-exec", assume_role_policy=TRUST["sagemaker"], tags=TAGS)
    aws.sagemaker.ModelPackageGroup(
        "registry",
        model_package_group_name=PACKAGE_GROUP,
        model_package_group_description="churn models",
        tags=TAGS,
    )
    pipeline = aws.sagemaker.Pipeline(
        "retrain",
        pipeline_name=PIPELINE,
        pipeline_display_name=PIPELINE,
        pipeline_description="retrains the churn model",
        role_arn=sm_role.arn,
        pipeline_definition=PIPELINE_DEFINITION,
        tags=TAGS,
    )
    retrain = aws.cloudwatch.EventRule(
        "retrain-schedule", schedule_expression="rate(7 days)", tags=TAGS
    )
    aws.cloudwatch.EventTarget(
        "retrain-target",
        rule=retrain.name,
        arn=pipeline.arn,
        role_arn=sm_role.arn,
        sagemaker_pipeline_target={
            "pipeline_parameter_lists": [{"name": "WindowDays", "value": "14"}]
        },
    )
    model = aws.sagemaker.Model(
        "churn-model",
        execution_role_arn=sm_role.arn,
        enable_network_isolation=True,
        primary_container={
            "image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/"
            "sagemaker-scikit-learn:1.4-2-cpu-py3",
            "model_data_url": pulumi.Output.concat("s3://", models.bucket, "/churn/model.tar.gz"),
            "environment": {"SAGEMAKER_PROGRAM": "inference.py"},
        },
        tags=TAGS,
    )
    config = aws.sagemaker.EndpointConfiguration(
        "churn-config",
        production_variants=[
            {
                "variant_name": "AllTraffic",
                "model_name": model.name,
                "instance_type": "ml.m5.large",
                "initial_instance_count": 1,
            }
        ],
        data_capture_config={
            "initial_sampling_percentage": 100,
            "destination_s3_uri": pulumi.Output.concat("s3://", models.bucket, "/capture/"),
            "capture_options": [{"capture_mode": "Input"}, {"capture_mode": "Output"}],
            "capture_content_type_header": {"json_content_types": ["application/json"]},
        },
        kms_key_arn=lake.key.arn,
        tags=TAGS,
    )
    endpoint = aws.sagemaker.Endpoint(
        "churn-endpoint",
        endpoint_config_name=config.name,
        deployment_config={
            "blue_green_update_policy": {
                "traffic_routing_configuration": {
                    "type": "CANARY",
                    "wait_interval_in_seconds": 600,
                    "canary_size": {"type": "CAPACITY_PERCENT", "value": 10},
                }
            }
        },
        tags=TAGS,
    )
    target = aws.appautoscaling.Target(
        "churn-scaling",
        service_namespace="sagemaker",
        resource_id=pulumi.Output.concat("endpoint/", endpoint.name, "/variant/AllTraffic"),
        scalable_dimension="sagemaker:variant:DesiredInstanceCount",
        min_capacity=1,
        max_capacity=2,
    )
    aws.appautoscaling.Policy(
        "churn-invocations",
        policy_type="TargetTrackingScaling",
        service_namespace=target.service_namespace,
        resource_id=target.resource_id,
        scalable_dimension=target.scalable_dimension,
        target_tracking_scaling_policy_configuration={
            "target_value": 200,
            "predefined_metric_specification": {
                "predefined_metric_type": "SageMakerVariantInvocationsPerInstance"
            },
            "scale_in_cooldown": 300,
            "scale_out_cooldown": 60,
        },
    )
    # monitoring
    aws.cloudwatch.MetricAlarm(
        "latency-p99",
        namespace="AWS/SageMaker",
        metric_name="ModelLatency",
        extended_statistic="p99",
        period=60,
        evaluation_periods=3,
        datapoints_to_alarm=2,
        threshold=250_000,
        comparison_operator="GreaterThanThreshold",
        treat_missing_data="notBreaching",
        dimensions={"EndpointName": endpoint.name, "VariantName": "AllTraffic"},
        alarm_actions=[topic.arn],
        ok_actions=[topic.arn],
        tags=TAGS,
    )
    aws.cloudwatch.MetricAlarm(
        "errors-5xx",
        namespace="AWS/SageMaker",
        metric_name="Invocation5XXErrors",
        statistic="Sum",
        period=60,
        evaluation_periods=1,
        threshold=1,
        comparison_operator="GreaterThanOrEqualToThreshold",
        treat_missing_data="notBreaching",
        dimensions={"EndpointName": endpoint.name, "VariantName": "AllTraffic"},
        alarm_actions=[topic.arn],
    )
    aws.cloudwatch.Dashboard(
        "ops",
        dashboard_name=DASHBOARD,
        dashboard_body=json.dumps(
            {
                "widgets": [
                    {
                        "type": "text",
                        "x": 0,
                        "y": 0,
                        "width": 6,
                        "height": 2,
                        "properties": {"markdown": "ml-platform"},
                    }
                ]
            }
        ),
    )
    rule = aws.cloudwatch.EventRule(
        "drift-schedule", schedule_expression="rate(1 hour)", description="drift job", tags=TAGS
    )
    aws.cloudwatch.EventTarget(
        "drift-target", rule=rule.name, arn=queue.arn, input=json.dumps({"job": "drift"})
    )
    drift_logs = aws.cloudwatch.LogGroup("drift-logs", retention_in_days=30)
    aws.sfn.StateMachine(
        "drift-machine",
        role_arn=sm_role.arn,
        type="STANDARD",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        logging_configuration={
            "level": "ERROR",
            "include_execution_data": False,
            "log_destination": pulumi.Output.concat(drift_logs.arn, ":*"),
        },
        tags=TAGS,
    )
    aws.kms.Grant(
        "volume-grant",
        key_id=lake.key.key_id,
        grantee_principal=sm_role.arn,
        operations=["Encrypt", "Decrypt", "GenerateDataKey"],
    )
    # network
    vpc = aws.ec2.Vpc(
        "net",
        cidr_block=VPC_CIDR,
        enable_dns_hostnames=True,
        enable_dns_support=True,
        tags={**TAGS, "Name": "ml-platform"},
    )
    subnets = [
        aws.ec2.Subnet(
            f"net-private-{i}",
            vpc_id=vpc.id,
            cidr_block=f"10.40.{i}.0/24",
            availability_zone=f"us-east-1{'ab'[i]}",
            tags=TAGS,
        )
        for i in range(2)
    ]
    aws.ec2.DefaultSecurityGroup("net-default-sg", vpc_id=vpc.id, ingress=[], egress=[], tags=TAGS)
    table = aws.ec2.RouteTable("net-private", vpc_id=vpc.id, tags=TAGS)
    for i, subnet in enumerate(subnets):
        aws.ec2.RouteTableAssociation(
            f"net-private-assoc-{i}", route_table_id=table.id, subnet_id=subnet.id
        )
    public = aws.ec2.Subnet(
        "net-public-0",
        vpc_id=vpc.id,
        cidr_block="10.40.100.0/24",
        availability_zone="us-east-1a",
        map_public_ip_on_launch=False,
        tags=TAGS,
    )
    gateway = aws.ec2.InternetGateway("net-igw", vpc_id=vpc.id, tags=TAGS)
    public_table = aws.ec2.RouteTable(
        "net-public",
        vpc_id=vpc.id,
        routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}],
        tags=TAGS,
    )
    aws.ec2.RouteTableAssociation(
        "net-public-assoc-0", route_table_id=public_table.id, subnet_id=public.id
    )
    eip = aws.ec2.Eip("net-nat-ip", domain="vpc", tags=TAGS)
    nat = aws.ec2.NatGateway("net-nat", subnet_id=public.id, allocation_id=eip.id, tags=TAGS)
    aws.ec2.Route(
        "net-private-default",
        route_table_id=table.id,
        destination_cidr_block="0.0.0.0/0",
        nat_gateway_id=nat.id,
    )
    group = aws.ec2.SecurityGroup(
        "net-endpoints",
        vpc_id=vpc.id,
        description="VPC endpoints",
        ingress=[{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": [VPC_CIDR]}],
        egress=[],
        tags=TAGS,
    )
    # the network component's way: a group without inline rules, and one resource per rule
    workers = aws.ec2.SecurityGroup("net-workers", vpc_id=vpc.id, description="workers", tags=TAGS)
    aws.vpc.SecurityGroupIngressRule(
        "net-workers-https",
        security_group_id=workers.id,
        ip_protocol="tcp",
        from_port=8443,
        to_port=8443,
        cidr_ipv4=VPC_CIDR,
    )
    aws.vpc.SecurityGroupIngressRule(
        "net-workers-self",
        security_group_id=workers.id,
        ip_protocol="-1",
        referenced_security_group_id=workers.id,
    )
    aws.vpc.SecurityGroupEgressRule(
        "net-workers-egress",
        security_group_id=workers.id,
        ip_protocol="tcp",
        from_port=443,
        to_port=443,
        cidr_ipv4=VPC_CIDR,
    )
    s3_endpoint = aws.ec2.VpcEndpoint(
        "net-s3",
        vpc_id=vpc.id,
        service_name="com.amazonaws.us-east-1.s3",
        vpc_endpoint_type="Gateway",
        route_table_ids=[table.id],
        tags=TAGS,
    )
    aws.vpc.SecurityGroupEgressRule(
        "net-workers-s3",
        security_group_id=workers.id,
        ip_protocol="tcp",
        from_port=443,
        to_port=443,
        prefix_list_id=s3_endpoint.prefix_list_id,
    )
    aws.ec2.VpcEndpoint(
        "net-sagemaker-runtime",
        vpc_id=vpc.id,
        service_name="com.amazonaws.us-east-1.sagemaker.runtime",
        vpc_endpoint_type="Interface",
        private_dns_enabled=True,
        subnet_ids=[s.id for s in subnets],
        security_group_ids=[group.id],
        tags=TAGS,
    )
    flow_role = aws.iam.Role("net-flow-role", assume_role_policy=TRUST["vpc-flow-logs"])
    flow_logs = aws.cloudwatch.LogGroup("net-flow-logs", retention_in_days=30, tags=TAGS)
    aws.ec2.FlowLog(
        "net-flow",
        vpc_id=vpc.id,
        traffic_type="ALL",
        log_destination_type="cloud-watch-logs",
        log_destination=flow_logs.arn,
        iam_role_arn=flow_role.arn,
        tags=TAGS,
    )
    # images and audit
    repo = aws.ecr.Repository(
        "trainer",
        image_tag_mutability="IMMUTABLE",
        image_scanning_configuration={"scan_on_push": True},
        tags=TAGS,
    )
    aws.ecr.LifecyclePolicy(
        "trainer-lifecycle",
        repository=repo.name,
        policy=json.dumps(
            {
                "rules": [
                    {
                        "rulePriority": 1,
                        "selection": {
                            "tagStatus": "untagged",
                            "countType": "sinceImagePushed",
                            "countUnit": "days",
                            "countNumber": 14,
                        },
                        "action": {"type": "expire"},
                    }
                ]
            }
        ),
    )
    aws.ecr.RepositoryPolicy(
        "trainer-policy",
        repository=repo.name,
        policy=_doc(
            {
                "Sid": "Pull",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": ["ecr:BatchGetImage"],
            }
        ),
    )
    trail_bucket = aws.s3.Bucket("audit-trail", force_destroy=True, tags=TAGS)
    trail_policy = aws.s3.BucketPolicy(
        "audit-trail-policy",
        bucket=trail_bucket.id,
        policy=trail_bucket.arn.apply(
            lambda arn: _doc(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudtrail.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": f"{arn}/AWSLogs/*",
                }
            )
        ),
    )
    aws.cloudtrail.Trail(
        "audit",
        s3_bucket_name=trail_bucket.id,
        include_global_service_events=True,
        enable_log_file_validation=True,
        event_selectors=[
            {
                "read_write_type": "All",
                "include_management_events": True,
                "data_resources": [
                    {"type": "AWS::S3::Object", "values": [lake.raw.arn.apply(lambda a: f"{a}/")]}
                ],
            }
        ],
        tags=TAGS,
        opts=pulumi.ResourceOptions(depends_on=[trail_policy]),
    )
    aws.ec2.LaunchTemplate(
        "gpu-nodes",
        instance_type="g5.xlarge",
        metadata_options={"http_tokens": "required", "http_put_response_hop_limit": 1},
        tags=TAGS,
    )
    # not emulated: EKS and Kubernetes
    cluster = aws.eks.Cluster(
        "gpu", role_arn=sm_role.arn, vpc_config={"subnet_ids": [s.id for s in subnets]}
    )
    provider = k8s.Provider("gpu-k8s", kubeconfig=cluster.endpoint)
    k8s.core.v1.Namespace(
        "training", metadata={"name": "training"}, opts=pulumi.ResourceOptions(provider=provider)
    )
    pulumi.export("raw_bucket", lake.raw.bucket)
    pulumi.export("lake_kms_key_arn", lake.key.arn)
    pulumi.export("glue_database", lake.database.name)
    pulumi.export("athena_workgroup", lake.workgroup.name)
    pulumi.export("ingest_stream_name", stream.name)
    pulumi.export("endpoint_name", endpoint.name)
    pulumi.export("alarm_topic_arn", topic.arn)
    pulumi.export("oncall_queue_url", queue.url)
