use std::mem::MaybeUninit;
use libbpf_rs::skel::{OpenSkel, SkelBuilder, Skel};
fn main() -> anyhow::Result<()> {
    let mut obj = MaybeUninit::uninit();
    let open = tetra_agent::sensors::process::ProcessSkelBuilder::default().open(&mut obj)?;
    let mut skel = open.load()?;
    skel.attach()?;
    println!("attached");
    Ok(())
}
