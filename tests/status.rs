//! `learntrac status` against moto: an ECS service, its load balancer and target group,
//! and SSM parameters created through the AWS APIs, read back in one status.

mod common;

use common::{Cli, Project, peer, sdk_config};
use serde_json::Value;

/// Subnet and VPC ids of moto's default VPC, through EC2's query API (no EC2 SDK needed).
async fn default_subnets(endpoint: &str) -> (String, Vec<String>) {
    let body = reqwest::Client::new()
        .post(endpoint)
        .header("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-2/ec2/aws4_request, SignedHeaders=host, Signature=x")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("Action=DescribeSubnets&Version=2016-11-15")
        .send()
        .await
        .expect("ec2")
        .text()
        .await
        .expect("xml");
    let grab = |tag: &str| -> Vec<String> {
        body.split(&format!("<{tag}>"))
            .skip(1)
            .filter_map(|s| s.split('<').next())
            .map(String::from)
            .collect()
    };
    let vpc = grab("vpcId").into_iter().next().expect("a default VPC");
    (vpc, grab("subnetId").into_iter().take(2).collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn status_reads_services_deployments_images_targets_and_secrets() {
    let endpoint = peer("LEARNTRAC_TEST_MOTO", "moto (the AWS endpoint)");
    let project = format!("st{}", std::process::id() % 100_000);
    let p = Project::new();
    p.edit(
        "local",
        "endpoint: http://127.0.0.1:5000",
        &format!("endpoint: {endpoint}"),
    );
    p.edit(
        "local",
        "project: learntrac",
        &format!("project: {project}"),
    );
    let prefix = format!("{project}-local");

    let config = sdk_config(&endpoint).await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let image = "123456789012.dkr.ecr.us-east-2.amazonaws.com/x-trac@sha256:0123456789abcdef";
    common::moto_trac_service(&ecs, &prefix, image).await;

    let (vpc, subnets) = default_subnets(&endpoint).await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let lb = elb
        .create_load_balancer()
        .name(format!("{prefix}-alb"))
        .set_subnets(Some(subnets))
        .send()
        .await
        .expect("load balancer");
    let lb_arn = lb.load_balancers()[0]
        .load_balancer_arn()
        .expect("arn")
        .to_string();
    let tg = elb
        .create_target_group()
        .name(format!("{project}-trac"))
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(8000)
        .vpc_id(vpc)
        .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Ip)
        .send()
        .await
        .expect("target group");
    let tg_arn = tg.target_groups()[0]
        .target_group_arn()
        .expect("arn")
        .to_string();
    elb.create_listener()
        .load_balancer_arn(&lb_arn)
        .port(80)
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .default_actions(
            aws_sdk_elasticloadbalancingv2::types::Action::builder()
                .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                .target_group_arn(&tg_arn)
                .build(),
        )
        .send()
        .await
        .expect("listener");
    elb.register_targets()
        .target_group_arn(&tg_arn)
        .targets(
            aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                .id("172.31.0.10")
                .port(8000)
                .build(),
        )
        .send()
        .await
        .expect("register");
    let ssm = aws_sdk_ssm::Client::new(&config);
    ssm.put_parameter()
        .name(format!("/{project}/local/token-secret"))
        .value("not-shown")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .expect("parameter");

    let run = Cli::new()
        .root(p.path())
        .args(["status", "local", "-o", "json"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !run.stdout.contains("not-shown"),
        "no secret values in status"
    );
    let s: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(s["cluster"], format!("{prefix}-cluster"));
    assert!(s["load_balancer"].is_string(), "{s}");
    let trac = &s["services"][0];
    assert_eq!(trac["service"], "trac");
    assert_eq!(trac["state"]["desired"], 1);
    assert_eq!(trac["state"]["deployments"][0]["status"], "PRIMARY");
    assert_eq!(
        trac["state"]["deployments"][0]["task_definition"],
        format!("{prefix}-trac:1")
    );
    assert_eq!(trac["image"], image);
    assert_eq!(trac["target_group"]["targets"][0]["id"], "172.31.0.10");
    assert!(
        trac["target_group"]["targets"][0]["state"].is_string(),
        "{trac}"
    );
    assert_eq!(
        s["services"][1]["state"],
        Value::Null,
        "learntrac was never deployed"
    );
    let secrets = s["secrets"].as_array().expect("secrets");
    let token = secrets
        .iter()
        .find(|x| x["variable"] == "LEARNTRAC_TOKEN_SECRET")
        .expect("token secret");
    assert_eq!(
        token["present"], false,
        "local.yaml names /learntrac/local/token-secret, not this project's: {token}"
    );

    let human = Cli::new().root(p.path()).args(["status", "local"]).run();
    assert_eq!(human.code, 0, "{}", human.stderr);
    assert!(human.stdout.contains("not deployed"), "{}", human.stdout);
    assert!(human.stdout.contains("PRIMARY"), "{}", human.stdout);
    assert!(human.stdout.contains("MISSING"), "{}", human.stdout);
}
