//! Compiles `journey/v1/*.proto` with protox (pure Rust: no `protoc` on the machine) and
//! writes the file descriptor set used for gRPC reflection and JSON conversion.
use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "journey/v1/events.proto",
        "journey/v1/event_log.proto",
        "journey/v1/readmission.proto",
        "journey/v1/projections.proto",
        "journey/v1/coordination.proto",
        "journey/v1/audit.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["."])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(
        out.join("journey_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
