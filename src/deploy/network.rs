//! Can the tasks start? A Fargate task without a public IP reaches ECR (its image: the
//! registry API, the registry, and the layers in S3), CloudWatch Logs and SSM (its secrets)
//! only through a NAT gateway or VPC endpoints. Without them every task fails to start,
//! after Terraform has created everything else — so preflight reads the route tables and
//! endpoints first.

use crate::aws::ec2::{Ec2, filters};
use crate::config::Environment;
use crate::error::Result;

/// What tasks without public IPs need when their subnets have no NAT route.
const ENDPOINTS: &[&str] = &["ecr.api", "ecr.dkr", "s3", "logs", "ssm"];

/// Subnets whose tasks could not start, and the VPC endpoints that would let them.
#[derive(Debug, PartialEq, Eq)]
pub struct Unreachable {
    pub vpc: String,
    pub subnets: Vec<String>,
    pub missing_endpoints: Vec<String>,
}

impl Unreachable {
    pub fn what(&self) -> String {
        format!(
            "tasks get no public IP (network.assign_public_ip: false), and subnet{} {} of {} route nothing to a NAT gateway, while the VPC lacks the endpoints tasks would need instead: {} — no task could pull its image or read its secrets",
            if self.subnets.len() == 1 { "" } else { "s" },
            self.subnets.join(", "),
            self.vpc,
            self.missing_endpoints.join(", ")
        )
    }

    pub fn fix(&self) -> String {
        format!(
            "route 0.0.0.0/0 of those subnets to a NAT gateway, or create the missing endpoints in {} (interface endpoints in the task subnets with private DNS on, the S3 gateway endpoint on their route tables; an endpoint that is not yet available or has private DNS off counts as missing), or use subnets with an internet gateway and network.assign_public_ip: true",
            self.vpc
        )
    }
}

/// A VPC whose DNS the stack cannot do without: Trac's tasks mount EFS by its DNS name and
/// interface endpoints answer through private DNS, both through the VPC's resolver.
#[derive(Debug, PartialEq, Eq)]
pub struct DnsOff {
    pub vpc: String,
    /// `enableDnsSupport`, `enableDnsHostnames`: those that are off.
    pub attributes: Vec<&'static str>,
}

impl DnsOff {
    pub fn what(&self) -> String {
        format!(
            "the VPC {} has {} off: Trac's tasks could not mount EFS by its name (and interface endpoints would not resolve), so they would never start",
            self.vpc,
            self.attributes.join(" and ")
        )
    }

    pub fn fix(&self) -> String {
        self.attributes
            .iter()
            .map(|a| {
                let flag = if *a == "enableDnsSupport" {
                    "--enable-dns-support"
                } else {
                    "--enable-dns-hostnames"
                };
                format!(
                    "aws ec2 modify-vpc-attribute --vpc-id {} {flag} '{{\"Value\":true}}'",
                    self.vpc
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The environment's VPC id (the account's default VPC for `network.vpc: default`).
pub async fn vpc_id(ec2: &Ec2, env: &Environment) -> Result<String> {
    if !env.network.uses_default_vpc() {
        return Ok(env.network.vpc.clone());
    }
    let doc = ec2
        .call("DescribeVpcs", &filters(&[("isDefault", "true")]))
        .await?;
    Ok(doc
        .items("vpcSet")
        .next()
        .map(|v| v.text_at("vpcId").to_string())
        .unwrap_or_default())
}

/// None when the VPC resolves names as the stack needs.
pub async fn dns(ec2: &Ec2, vpc: &str) -> Result<Option<DnsOff>> {
    let mut off = Vec::new();
    for attribute in ["enableDnsSupport", "enableDnsHostnames"] {
        let doc = ec2
            .call(
                "DescribeVpcAttribute",
                &[
                    ("VpcId".to_string(), vpc.to_string()),
                    ("Attribute".to_string(), attribute.to_string()),
                ],
            )
            .await?;
        if doc.text_at(&format!("{attribute}/value")) == "false" {
            off.push(attribute);
        }
    }
    Ok((!off.is_empty()).then(|| DnsOff {
        vpc: vpc.to_string(),
        attributes: off,
    }))
}

/// None when every task subnet can reach what a task start needs (or tasks get public IPs).
pub async fn check(ec2: &Ec2, env: &Environment, vpc: &str) -> Result<Option<Unreachable>> {
    if env.network.assign_public_ip {
        return Ok(None);
    }
    let vpc = vpc.to_string();
    let mut subnet_filters: Vec<(String, String)> = vec![("vpc-id".into(), vpc.clone())];
    subnet_filters.extend(
        env.network
            .private_subnet_tags
            .iter()
            .map(|(k, v)| (format!("tag:{k}"), v.clone())),
    );
    let pairs: Vec<(&str, &str)> = subnet_filters
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let subnets: Vec<String> = ec2
        .call_pages("DescribeSubnets", &filters(&pairs))
        .await?
        .iter()
        .flat_map(|page| {
            page.items("subnetSet")
                .map(|s| s.text_at("subnetId").to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let tables = ec2
        .call_pages("DescribeRouteTables", &filters(&[("vpc-id", &vpc)]))
        .await?;
    // Each table: the subnets it is explicitly associated with, whether it is the VPC's
    // main table, and whether its default route leaves through a NAT (gateway, transit
    // gateway or instance).
    let mut main_egress = false;
    let mut egress_of: Vec<(String, bool)> = Vec::new();
    for t in tables.iter().flat_map(|page| page.items("routeTableSet")) {
        let egress = t.items("routeSet").any(|r| {
            r.text_at("destinationCidrBlock") == "0.0.0.0/0"
                && [
                    "natGatewayId",
                    "transitGatewayId",
                    "instanceId",
                    "networkInterfaceId",
                ]
                .iter()
                .any(|k| !r.text_at(k).is_empty())
        });
        for a in t.items("associationSet") {
            if a.text_at("main") == "true" {
                main_egress = egress;
            }
            let subnet = a.text_at("subnetId");
            if !subnet.is_empty() {
                egress_of.push((subnet.to_string(), egress));
            }
        }
    }
    let stranded: Vec<String> = subnets
        .into_iter()
        .filter(|s| {
            !egress_of
                .iter()
                .find(|(id, _)| id == s)
                .map_or(main_egress, |(_, e)| *e)
        })
        .collect();
    if stranded.is_empty() {
        return Ok(None);
    }
    let endpoints = ec2
        .call_pages("DescribeVpcEndpoints", &filters(&[("vpc-id", &vpc)]))
        .await?;
    // An endpoint serves the tasks only when it is available and, for the interface
    // endpoints (all but S3's gateway), answers the service's usual name: private DNS on.
    let have: Vec<String> = endpoints
        .iter()
        .flat_map(|page| page.items("vpcEndpointSet"))
        .filter(|e| {
            let state = e.text_at("state").to_ascii_lowercase();
            (state.is_empty() || state == "available")
                && (e.text_at("vpcEndpointType") != "Interface"
                    || e.text_at("privateDnsEnabled") == "true")
        })
        .map(|e| e.text_at("serviceName").to_string())
        .collect();
    let missing: Vec<String> = ENDPOINTS
        .iter()
        .map(|e| format!("com.amazonaws.{}.{e}", env.aws.region))
        .filter(|name| !have.contains(name))
        .collect();
    if missing.is_empty() {
        return Ok(None);
    }
    Ok(Some(Unreachable {
        vpc,
        subnets: stranded,
        missing_endpoints: missing,
    }))
}
