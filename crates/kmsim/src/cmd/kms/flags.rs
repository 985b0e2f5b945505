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

/// What `kmsim kms` needs of one operation of the node's operation list
/// (`kmsim_node::for_each_kms_operation!`), implemented on its request message: the flags that
/// build the request and, for a paginated operation, the list member its pages are merged on.
/// The subcommands are generated from that list, so an operation added there without an impl
/// here is a compile error, not a missing subcommand.
pub trait CliOperation {
    /// The operation's flags (`kmsim kms <operation> --…`); their `into_request` builds `Self`.
    type Args: clap::Args + clap::FromArgMatches;
    /// The list member a paginated response is merged on (`"Keys"`), `None` if not paginated.
    const PAGES: Option<&'static str> = None;
}

/// Implements [`CliOperation`] for each request listed, next to the flags that build it:
/// `flags_of! { ListKeysRequest => ListKeysArgs, pages: "Keys"; EncryptRequest => EncryptArgs; }`.
macro_rules! flags_of {
    ($( $request:ty => $args:ty $(, pages: $list:literal)?; )*) => {
        $(
            impl $crate::cmd::kms::flags::CliOperation for $request {
                type Args = $args;
                $( const PAGES: Option<&'static str> = Some($list); )?
            }
        )*
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
