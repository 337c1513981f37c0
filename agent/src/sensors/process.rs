//! The always-on process lifecycle sensor (exec, fork, exit).
mod skel {
    include!(concat!(env!("OUT_DIR"), "/process.skel.rs"));
}
pub use skel::*;
