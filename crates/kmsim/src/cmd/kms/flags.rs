//! Flag groups that several operations share through `#[command(flatten)]`, and [`ApplyTo`],
//! which sets a group's members on each of those operations' requests with one body.

use clap::Args;

use kmsim_proto::kms::v1::{
    ListGrantsRequest, ListKeyRotationsRequest, ListRetirableGrantsRequest,
};

use super::set;

/// Sets the request members a shared flag group holds: one group serves several operations
/// whose (different) request messages have those members.
pub trait ApplyTo<R> {
    /// Overrides the members of `request` with the flags given.
    fn apply_to(self, request: &mut R);
}

/// Implements [`ApplyTo`] for a flag group and every request listed, with one body:
/// `apply_to! { Flags => ReqA, ReqB; |f, r| { set(&mut r.key_id, f.key_id); } }`.
macro_rules! apply_to {
    ($flags:ty => $($request:ty),+ ; |$f:ident, $r:ident| $body:block) => {
        $(
            impl $crate::cmd::kms::flags::ApplyTo<$request> for $flags {
                fn apply_to(self, $r: &mut $request) {
                    let $f = self;
                    $body
                }
            }
        )+
    };
}

/// `--limit` / `--marker` of a paginated operation; either one asks for a single page.
#[derive(Args)]
pub struct PageFlags {
    /// Page size (1..1000; the service caps it at its own maximum); only that one page is
    /// printed, with NextMarker and Truncated.
    #[arg(long, value_name = "N")]
    limit: Option<i32>,
    /// NextMarker of the previous page; only that one page is printed.
    #[arg(long)]
    marker: Option<String>,
}

apply_to! {
    PageFlags => ListKeyRotationsRequest, ListGrantsRequest, ListRetirableGrantsRequest;
    |f, r| {
        set(&mut r.limit, f.limit);
        set(&mut r.marker, f.marker);
    }
}
