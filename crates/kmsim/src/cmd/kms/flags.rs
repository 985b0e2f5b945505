//! [`ApplyTo`], which sets the members of a flag group that several operations share through
//! `#[command(flatten)]` on each of those operations' requests with one body.

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
