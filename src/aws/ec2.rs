//! The few EC2 reads `deploy`'s preflight needs (VPCs, subnets, route tables, VPC
//! endpoints), over EC2's Query API (signed.rs). The `aws-sdk-ec2` crate would double the CLI's build time for four calls.

use aws_config::SdkConfig;

use crate::error::{Error, Result};

const API_VERSION: &str = "2016-11-15";

/// An XML element: its name, its text, its children in order.
#[derive(Debug, Clone, Default)]
pub struct Node {
    pub name: String,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The text of the child at `path` (`a/b/c`), empty when absent.
    pub fn text_at(&self, path: &str) -> &str {
        path.split('/')
            .try_fold(self, |n, p| n.child(p))
            .map_or("", |n| n.text.as_str())
    }

    /// The `<item>`s of the list child `name`.
    pub fn items(&self, name: &str) -> impl Iterator<Item = &Node> {
        self.child(name)
            .into_iter()
            .flat_map(|l| l.children.iter().filter(|c| c.name == "item"))
    }
}

/// The document's root element as a tree (AWS answers are small and well-formed).
pub fn parse(xml: &str) -> std::result::Result<Node, String> {
    use xmlparser::{ElementEnd, Token, Tokenizer};
    let mut stack: Vec<Node> = Vec::new();
    let mut root = None;
    for token in Tokenizer::from(xml) {
        match token.map_err(|e| e.to_string())? {
            Token::ElementStart { local, .. } => stack.push(Node {
                name: local.as_str().to_string(),
                ..Node::default()
            }),
            Token::Text { text } | Token::Cdata { text, .. } => {
                if let Some(n) = stack.last_mut() {
                    n.text.push_str(&unescape(text.as_str()));
                }
            }
            Token::ElementEnd {
                end: ElementEnd::Close(..) | ElementEnd::Empty,
                ..
            } => {
                let mut done = stack.pop().ok_or("unbalanced XML")?;
                if !done.children.is_empty() {
                    done.text.clear();
                }
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            _ => {}
        }
    }
    root.ok_or_else(|| "no XML element".to_string())
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

pub struct Ec2 {
    signed: super::signed::Signed,
}

impl Ec2 {
    pub async fn new(config: &SdkConfig) -> Result<Self> {
        Ok(Ec2 {
            signed: super::signed::Signed::new(config, "ec2", "AWS_ENDPOINT_URL_EC2").await?,
        })
    }

    /// One Query API call; the response document, or the error EC2 answered.
    pub async fn call(&self, action: &str, params: &[(String, String)]) -> Result<Node> {
        self.signed
            .query(action, API_VERSION, params)
            .await
            .map_err(|cause| Error::Aws {
                what: format!("read the network ({action})"),
                which: self.signed.endpoint.clone(),
                cause,
            })
    }
}

impl Ec2 {
    /// Every page of a Describe call: EC2 answers large accounts (hundreds of route tables
    /// or endpoints) in pages, each naming the next with `nextToken`.
    pub async fn call_pages(&self, action: &str, params: &[(String, String)]) -> Result<Vec<Node>> {
        let mut pages = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut p = params.to_vec();
            if let Some(t) = &token {
                p.push(("NextToken".into(), t.clone()));
            }
            let doc = self.call(action, &p).await?;
            let next = doc.text_at("nextToken").to_string();
            pages.push(doc);
            // A page that repeats its token would loop for ever; EC2 never does that.
            if next.is_empty() || token.as_deref() == Some(next.as_str()) || pages.len() >= 100 {
                return Ok(pages);
            }
            token = Some(next);
        }
    }
}

/// `Filter.N.Name` / `Filter.N.Value.1` parameters.
pub fn filters(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .enumerate()
        .flat_map(|(i, (name, value))| {
            [
                (format!("Filter.{}.Name", i + 1), name.to_string()),
                (format!("Filter.{}.Value.1", i + 1), value.to_string()),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nested_lists() {
        let doc = parse(
            r#"<DescribeRouteTablesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <routeTableSet>
    <item><routeTableId>rtb-1</routeTableId>
      <associationSet><item><main>true</main></item></associationSet>
      <routeSet><item><destinationCidrBlock>0.0.0.0/0</destinationCidrBlock><natGatewayId>nat-1</natGatewayId></item></routeSet>
    </item>
  </routeTableSet>
</DescribeRouteTablesResponse>"#,
        )
        .expect("XML");
        let table = doc.items("routeTableSet").next().expect("a table");
        assert_eq!(table.text_at("routeTableId"), "rtb-1");
        assert_eq!(
            table
                .items("associationSet")
                .next()
                .map(|a| a.text_at("main")),
            Some("true")
        );
        assert_eq!(
            table
                .items("routeSet")
                .next()
                .map(|r| r.text_at("natGatewayId")),
            Some("nat-1")
        );
        assert_eq!(
            filters(&[("vpc-id", "vpc-1")]),
            [
                ("Filter.1.Name".to_string(), "vpc-id".to_string()),
                ("Filter.1.Value.1".to_string(), "vpc-1".to_string())
            ]
        );
    }
}
