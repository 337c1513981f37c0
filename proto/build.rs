//! Compiles `proto/tetragon/*.proto` into Rust (prost + tonic) and adds
//! protojson-compatible serde impls (pbjson) using the proto field names.

use std::{env, path::PathBuf};

const PROTOS: &[&str] = &[
    "proto/tetragon/capabilities.proto",
    "proto/tetragon/bpf.proto",
    "proto/tetragon/tetragon.proto",
    "proto/tetragon/events.proto",
    "proto/tetragon/sensors.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for p in PROTOS {
        println!("cargo:rerun-if-changed={p}");
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("tetragon_descriptor.bin");

    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptor_path)
        // Wrappers (UInt32Value, BoolValue, ...) stay prost's plain
        // `Option<u32>`/`Option<bool>`; Timestamp is ours (Go protojson formatting);
        // the other well-known types come from
        // pbjson-types, which serializes them like protojson.
        .extern_path(".google.protobuf.Timestamp", "crate::timestamp::Timestamp")
        .extern_path(".google.protobuf.Duration", "::pbjson_types::Duration")
        .extern_path(".google.protobuf.FieldMask", "crate::field_mask::FieldMask")
        .extern_path(".google.protobuf.Any", "::pbjson_types::Any")
        .compile_protos(PROTOS, &["proto"])?;

    let descriptors = std::fs::read(&descriptor_path)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        .preserve_proto_field_names()
        .ignore_unknown_fields()
        .build(&[".tetragon"])?;
    Ok(())
}
