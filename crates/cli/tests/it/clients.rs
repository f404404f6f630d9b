//! Real registry clients against a real server process.

use std::process::Command;

use airlock_test_support::oci::{Image, pseudo_random};
use airlock_test_support::process::ServerProcess;

use crate::{airlock, python, run};

#[test]
fn skopeo_round_trip_keeps_digests() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(airlock(), &dir.path().join("data"));
    let image = Image::new(&[("app.bin", &pseudo_random(512 * 1024, 1)), ("etc/config", b"key=value\n")]);
    let layout = dir.path().join("layout");
    image.write_layout(&layout, "1.4.2");

    let creds = format!("tester:{}", server.tester_key);
    let dest = format!("docker://{}/dev/payments/api:1.4.2", server.host());
    // Without credentials the registry asks for them.
    let anonymous = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", "--retry-times=0"])
        .arg(format!("oci:{}:1.4.2", layout.display()))
        .arg(&dest)
        .output()
        .unwrap();
    assert!(!anonymous.status.success(), "an anonymous push must fail");
    run(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", "--preserve-digests", "--dest-creds", &creds])
        .arg(format!("oci:{}:1.4.2", layout.display()))
        .arg(&dest));

    let head = server.request("HEAD", "/v2/dev/payments/api/manifests/1.4.2", &[("Accept", image.media_type())], b"");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("docker-content-digest"), image.digest(), "the registry holds the manifest byte for byte");

    let out = dir.path().join("out");
    run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false", "--preserve-digests", "--src-creds", &creds])
        .arg(&dest)
        .arg(format!("dir:{}", out.display())));
    let manifest = std::fs::read(out.join("manifest.json")).unwrap();
    assert_eq!(manifest, image.manifest.to_vec(), "the manifest came back byte for byte");
    for blob in image.blobs() {
        let hex = airlock_test_support::oci::digest(blob);
        let pulled = std::fs::read(out.join(hex.trim_start_matches("sha256:"))).unwrap();
        assert_eq!(&pulled, blob, "blob {hex} came back intact");
    }

    let inspect = run(Command::new("skopeo").args(["inspect", "--tls-verify=false", "--creds", &creds]).arg(&dest));
    let inspected: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(inspected["Digest"], serde_json::json!(image.digest()));

    // A gated stage refuses skopeo too: `/token` grants no push there, to anyone.
    let prod = format!("docker://{}/prod/payments/api:1.4.2", server.host());
    let denied = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", "--retry-times=0", "--dest-creds", &creds])
        .arg(format!("oci:{}:1.4.2", layout.display()))
        .arg(&prod)
        .output()
        .unwrap();
    assert!(!denied.status.success());
    let stderr = String::from_utf8_lossy(&denied.stderr).to_lowercase();
    assert!(stderr.contains("unauthorized") || stderr.contains("denied"), "{stderr}");
}

#[test]
fn podman_push_and_pull() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(airlock(), &dir.path().join("data"));
    let image = Image::new(&[("hello.txt", b"hello from podman\n")]);
    let layout = dir.path().join("layout");
    image.write_layout(&layout, "v1");
    let root = dir.path().join("podman");
    let podman = |args: &[&str]| {
        let mut cmd = Command::new("podman");
        cmd.arg("--root").arg(root.join("root")).arg("--runroot").arg(root.join("run"));
        cmd.args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "none"]);
        cmd.args(args);
        cmd
    };
    // Seed the registry with skopeo, then let podman pull, retag, push, forget and pull again.
    let seed = format!("{}/dev/podman/seed:v1", server.host());
    let creds = format!("tester:{}", server.tester_key);
    run(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", "--preserve-digests", "--dest-creds", &creds])
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(format!("docker://{seed}")));
    let authfile = root.join("auth.json");
    let authfile = authfile.to_str().unwrap();
    run(&mut podman(&[
        "login",
        "--tls-verify=false",
        "--authfile",
        authfile,
        "-u",
        "tester",
        "-p",
        &server.tester_key,
        &server.host(),
    ]));
    let reference = format!("{}/dev/podman/hello:v1", server.host());
    run(&mut podman(&["pull", "--tls-verify=false", "--authfile", authfile, &seed]));
    let id = String::from_utf8(run(&mut podman(&["images", "-q", "--no-trunc"])).stdout).unwrap();
    let id = id.lines().next().unwrap().trim().to_owned();
    run(&mut podman(&["tag", &id, &reference]));
    run(&mut podman(&["push", "--tls-verify=false", "--authfile", authfile, &reference]));
    run(&mut podman(&["rmi", "-a", "-f"]));
    run(&mut podman(&["pull", "--tls-verify=false", "--authfile", authfile, &reference]));
    let inspect = run(&mut podman(&["image", "inspect", &reference]));
    let inspected: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(inspected[0]["Id"].as_str().unwrap(), id.trim_start_matches("sha256:"), "the same image came back");
    let tags = server.request("GET", "/v2/dev/podman/hello/tags/list", &[], b"");
    assert_eq!(String::from_utf8_lossy(&tags.body), r#"{"name":"dev/podman/hello","tags":["v1"]}"#);
    // Logged in or not, podman cannot push into `prod`.
    let prod = format!("{}/prod/podman/hello:v1", server.host());
    run(&mut podman(&["tag", &id, &prod]));
    let denied = podman(&["push", "--tls-verify=false", "--authfile", authfile, &prod]).output().unwrap();
    assert!(!denied.status.success(), "podman pushed into prod");
    let stderr = String::from_utf8_lossy(&denied.stderr).to_lowercase();
    assert!(stderr.contains("unauthorized") || stderr.contains("denied"), "{stderr}");
}

#[test]
fn oras_pushes_an_artifact_and_a_referrer() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(airlock(), &dir.path().join("data"));
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/oras_push.py");
    let out = run(Command::new(python())
        .arg(script)
        .arg(server.host())
        .arg("dev/charts/web")
        .env("AIRLOCK_USERNAME", "tester")
        .env("AIRLOCK_PASSWORD", &server.tester_key)
        .current_dir(dir.path()));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let subject = report["subject"].as_str().unwrap();
    assert_eq!(report["oci_subject_header"].as_str(), Some(subject));

    let referrers = server.request("GET", &format!("/v2/dev/charts/web/referrers/{subject}"), &[], b"");
    let index: serde_json::Value = serde_json::from_slice(&referrers.body).unwrap();
    let listed = index["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["digest"].as_str(), report["referrer"].as_str());
    // The artifact's own blob reads back through the registry.
    let pulled = std::fs::read(dir.path().join("pulled/chart.tgz")).unwrap();
    assert_eq!(pulled, b"helm chart bytes\n");
}
