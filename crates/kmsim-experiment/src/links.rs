//! Link presets: the delay of every message between two Regions.
//!
//! `aws-like` gives each pair of Regions half the round-trip time measured between AWS's own
//! Regions, in each direction, with jitter of a twentieth of that. The round-trip times are
//! medians from CloudPing's inter-Region grid (<https://www.cloudping.co/grid>, EC2 instances
//! pinging each other across Regions), rounded to 5 ms; `docs/EXPERIMENTS.md` lists them.
//! `lan` is a small fixed delay, as between data centres of one metro area.

use std::time::Duration;

use crate::spec::LinkSpec;

/// Median round-trip times between AWS Regions in milliseconds (CloudPing, rounded), each
/// unordered pair once.
pub const AWS_RTT_MS: &[(&str, &str, u64)] = &[
    ("us-east-1", "us-east-2", 15),
    ("us-east-1", "us-west-2", 65),
    ("us-east-1", "eu-west-1", 70),
    ("us-east-1", "eu-central-1", 90),
    ("us-east-1", "ap-northeast-1", 145),
    ("us-east-1", "ap-southeast-2", 200),
    ("us-east-2", "us-west-2", 50),
    ("us-east-2", "eu-west-1", 85),
    ("us-east-2", "eu-central-1", 100),
    ("us-east-2", "ap-northeast-1", 135),
    ("us-east-2", "ap-southeast-2", 190),
    ("us-west-2", "eu-west-1", 125),
    ("us-west-2", "eu-central-1", 140),
    ("us-west-2", "ap-northeast-1", 100),
    ("us-west-2", "ap-southeast-2", 140),
    ("eu-west-1", "eu-central-1", 25),
    ("eu-west-1", "ap-northeast-1", 205),
    ("eu-west-1", "ap-southeast-2", 255),
    ("eu-central-1", "ap-northeast-1", 225),
    ("eu-central-1", "ap-southeast-2", 245),
    ("ap-northeast-1", "ap-southeast-2", 105),
];

/// The presets' names.
pub const PRESETS: [&str; 2] = ["aws-like", "lan"];

/// The round-trip time between two Regions in the `aws-like` table, if it has the pair.
pub fn aws_rtt(a: &str, b: &str) -> Option<Duration> {
    AWS_RTT_MS
        .iter()
        .find(|(x, y, _)| (*x == a && *y == b) || (*x == b && *y == a))
        .map(|(_, _, ms)| Duration::from_millis(*ms))
}

/// Every directed link between `regions` under preset `name`; an error names what is missing.
pub fn preset(name: &str, regions: &[String]) -> Result<Vec<LinkSpec>, String> {
    let mut out = Vec::new();
    for from in regions {
        for to in regions.iter().filter(|t| *t != from) {
            let one_way = match name {
                "aws-like" => aws_rtt(from, to).ok_or_else(|| {
                    format!(
                        "the aws-like table has no round-trip time for {from} and {to}; it knows {}",
                        known_regions().join(", ")
                    )
                })? / 2,
                "lan" => Duration::from_millis(1),
                other => {
                    return Err(format!(
                        "no preset '{other}'; use {}",
                        PRESETS.join(" or ")
                    ))
                }
            };
            out.push(LinkSpec {
                from: from.clone(),
                to: to.clone(),
                delay: one_way,
                jitter: one_way / 20,
                loss: 0.0,
            });
        }
    }
    Ok(out)
}

/// The Regions the `aws-like` table covers.
pub fn known_regions() -> Vec<&'static str> {
    let mut r: Vec<&str> = AWS_RTT_MS.iter().flat_map(|(a, b, _)| [*a, *b]).collect();
    r.sort_unstable();
    r.dedup();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_covers_every_pair_of_its_regions_once() {
        let regions = known_regions();
        for (i, a) in regions.iter().enumerate() {
            for b in &regions[i + 1..] {
                let n = AWS_RTT_MS
                    .iter()
                    .filter(|(x, y, _)| (x == a && y == b) || (x == b && y == a))
                    .count();
                assert_eq!(n, 1, "{a} and {b}");
            }
        }
    }

    #[test]
    fn aws_like_is_half_the_round_trip_each_way() {
        let regions: Vec<String> = ["us-east-1", "ap-southeast-2"].map(String::from).into();
        let links = preset("aws-like", &regions).expect("known");
        assert_eq!(links.len(), 2);
        assert!(
            links
                .iter()
                .all(|l| l.delay == Duration::from_millis(100)
                    && l.jitter == Duration::from_millis(5))
        );
        let unknown: Vec<String> = ["us-east-1", "sa-east-1"].map(String::from).into();
        assert!(preset("aws-like", &unknown)
            .expect_err("not in the table")
            .contains("sa-east-1"));
        assert!(preset("wan", &regions).is_err());
    }
}
