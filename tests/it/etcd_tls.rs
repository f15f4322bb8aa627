//! etcd as production runs it: TLS with client certificates (`--client-cert-auth`), several
//! endpoints, user and password, and calicoctl's own configuration naming all of it. Real etcd
//! on loopback, with certificates the test makes with the `openssl` command line.

use crate::cli::{calplan_with as run, text};
use crate::current::{Etcd, free_port};
use calplan::etcd::{Credentials, Pem, Security};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// A CA, a server certificate for 127.0.0.1 and a client certificate it signed, and a second
/// CA that signed nothing etcd knows.
#[derive(Clone)]
pub(crate) struct Pki {
    directory: Arc<tempfile::TempDir>,
}

fn openssl(directory: &Path, args: &[&str]) {
    let output = Command::new("openssl").args(args).current_dir(directory).output().expect("`openssl` runs");
    assert!(output.status.success(), "openssl {args:?}: {}", text(&output.stderr));
}

impl Pki {
    pub(crate) fn make() -> Pki {
        let directory = tempfile::tempdir().unwrap();
        let dir = directory.path();
        let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        for ca in ["ca", "other-ca"] {
            let mut args = vec!["req", "-x509"];
            args.extend(key);
            let (key_out, cert_out, subject) = (format!("{ca}.key"), format!("{ca}.pem"), format!("/CN=calplan test {ca}"));
            args.extend(["-keyout", &key_out, "-out", &cert_out, "-days", "2", "-subj", &subject]);
            openssl(dir, &args);
        }
        // etcd's JSON gateway dials etcd's own gRPC port with the server certificate as a client
        // certificate, so with `--client-cert-auth` it must allow client use too (as Calico's do).
        std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n")
            .unwrap();
        std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        for (name, subject) in [("server", "/CN=etcd"), ("client", "/CN=calplan")] {
            let mut args = vec!["req"];
            args.extend(key);
            let (key_out, csr, subject) = (format!("{name}.key"), format!("{name}.csr"), subject.to_string());
            args.extend(["-keyout", &key_out, "-out", &csr, "-subj", &subject]);
            openssl(dir, &args);
            let (cert, ext) = (format!("{name}.pem"), format!("{name}.ext"));
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    &cert,
                    "-days",
                    "2",
                    "-extfile",
                    &ext,
                ],
            );
        }
        Pki { directory: Arc::new(directory) }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.directory.path().join(name)
    }

    fn pem(&self, name: &str) -> Pem {
        Pem { origin: name.to_string(), text: std::fs::read(self.path(name)).unwrap() }
    }

    pub(crate) fn client_security(&self) -> Security {
        Security { ca: Some(self.pem("ca.pem")), cert: Some(self.pem("client.pem")), key: Some(self.pem("client.key")), credentials: None }
    }

    /// calicoctl's environment for this PKI.
    fn environment(&self, ca: &str, with_client_certificate: bool) -> Vec<(String, String)> {
        let mut environment = vec![("ETCD_CA_CERT_FILE".to_string(), self.path(ca).display().to_string())];
        if with_client_certificate {
            environment.push(("ETCD_CERT_FILE".into(), self.path("client.pem").display().to_string()));
            environment.push(("ETCD_KEY_FILE".into(), self.path("client.key").display().to_string()));
        }
        environment
    }
}

fn pairs(environment: &[(String, String)]) -> Vec<(&str, &str)> {
    environment.iter().map(|(key, value)| (key.as_str(), value.as_str())).collect()
}

/// An address no etcd listens on: a port bound and released.
fn dead_endpoint() -> String {
    format!("127.0.0.1:{}", free_port())
}

#[test]
fn plan_apply_and_import_through_calicoctl_config_with_client_certificates_real_etcd() {
    let pki = Pki::make();
    let etcd = Etcd::start_with(Some(pki.clone()), &[]);
    crate::current::create_resources(&etcd.client(), "testdata/mesh-to-rr/current");
    let directory = tempfile::tempdir().unwrap();
    // calicoctl's configuration as an operator has it, first endpoint dead: failover.
    let config = directory.path().join("calicoctl.cfg");
    let dead = dead_endpoint();
    std::fs::write(
        &config,
        format!(
            "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {{}}\nspec:\n  datastoreType: etcdv3\n  \
             etcdEndpoints: https://{},https://127.0.0.1:{}\n  etcdCACertFile: {}\n  etcdCertFile: {}\n  etcdKeyFile: {}\n",
            dead,
            etcd.port(),
            pki.path("ca.pem").display(),
            pki.path("client.pem").display(),
            pki.path("client.key").display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let plan = directory.path().join("seed.plan");
    let output =
        run(&["plan", "testdata/seed-rr/intent.yaml", "--current", "etcd", "--calico-config", config, "-o", plan.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let saved = std::fs::read_to_string(&plan).unwrap();
    // The plan names the etcd by its canonical address, which apply reads again.
    assert!(saved.contains(&format!("\"etcds://{dead},127.0.0.1:{}\"", etcd.port())), "{saved}");
    let state = directory.path().join("state");
    let output = run(
        &[
            "apply",
            plan.to_str().unwrap(),
            "--calico",
            "etcd",
            "--calico-config",
            config,
            "--only",
            "calico",
            "--state",
            state.to_str().unwrap(),
            "--auto-approve",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stored = etcd.client().get("/calico/resources/v3/projectcalico.org/bgppeers/peer-with-route-reflectors").unwrap();
    assert!(stored.is_some(), "the apply wrote through TLS");
    // The environment, as calicoctl reads it, serves `etcds://` addresses too: import and plan.
    let environment = pki.environment("ca.pem", true);
    let output = run(&["import", "--current", &etcd.source()], &pairs(&environment));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("peerSelector: route-reflector == 'true'"), "{}", text(&output.stdout));
    let output = run(&["plan", "testdata/seed-rr/intent.yaml", "--current", &etcd.source(), "--detailed-exitcode"], &pairs(&environment));
    assert_eq!(output.status.code(), Some(0), "{}{}", text(&output.stdout), text(&output.stderr));
}

#[test]
fn a_wrong_ca_and_a_missing_client_certificate_are_refused_clearly_real_etcd() {
    let pki = Pki::make();
    let etcd = Etcd::start_with(Some(pki.clone()), &[]);
    let wrong_ca = pki.environment("other-ca.pem", true);
    let output = run(&["import", "--current", &etcd.source()], &pairs(&wrong_ca));
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains(&format!("TLS with etcd at 127.0.0.1:{}", etcd.port())) && stderr.contains("not signed by the CA"), "{stderr}");
    let no_client_certificate = pki.environment("ca.pem", false);
    let output = run(&["import", "--current", &etcd.source()], &pairs(&no_client_certificate));
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("requires a client certificate") && stderr.contains("ETCD_CERT_FILE"), "{stderr}");
    // Plain HTTP to a TLS port says what to write instead.
    let output = run(&["import", "--current", &format!("etcd://127.0.0.1:{}", etcd.port())], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("etcds://"), "{}", text(&output.stderr));
    // A key file that is no key is named, and its content never repeated.
    let directory = tempfile::tempdir().unwrap();
    let bad_key = directory.path().join("client.key");
    std::fs::write(&bad_key, "not a key: hunter2\n").unwrap();
    let mut environment = pki.environment("ca.pem", true);
    environment.retain(|(key, _)| key != "ETCD_KEY_FILE");
    environment.push(("ETCD_KEY_FILE".into(), bad_key.display().to_string()));
    let output = run(&["import", "--current", &etcd.source()], &pairs(&environment));
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("client.key") && !stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn the_next_endpoint_serves_when_the_first_is_dead_real_etcd() {
    let etcd = Etcd::start();
    crate::current::create_resources(&etcd.client(), "testdata/mesh-to-rr/current");
    let address = format!("etcd://{},127.0.0.1:{}", dead_endpoint(), etcd.port());
    let output = run(&["import", "--current", &address], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("192.168.0.0/16"));
    // Every endpoint dead: each is named with its reason.
    let (first, second) = (dead_endpoint(), dead_endpoint());
    let output = run(&["import", "--current", &format!("etcd://{first},{second}")], &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains(&first) && stderr.contains(&second) && stderr.contains("connection refused"), "{stderr}");
}

#[test]
fn user_and_password_reach_etcd_as_a_token_and_never_a_message_real_etcd() {
    let etcd = Etcd::start();
    crate::current::create_resources(&etcd.client(), "testdata/mesh-to-rr/current");
    let endpoints = format!("127.0.0.1:{}", etcd.port());
    for args in [&["user", "add", "root", "--new-user-password", "s3cret-Pw"][..], &["auth", "enable"][..]] {
        let output = Command::new("etcdctl").arg("--endpoints").arg(&endpoints).args(args).env("ETCDCTL_API", "3").output().unwrap();
        assert!(output.status.success(), "etcdctl {args:?}: {}", text(&output.stderr));
    }
    let source = etcd.source();
    let output = run(&["import", "--current", &source], &[]);
    assert_eq!(output.status.code(), Some(1), "auth is on: a request without a token is refused");
    assert!(text(&output.stderr).contains("ETCD_USERNAME"), "{}", text(&output.stderr));
    let output = run(&["import", "--current", &source], &[("ETCD_USERNAME", "root"), ("ETCD_PASSWORD", "wrong-Pw")]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("did not accept the user `root`") && !stderr.contains("wrong-Pw"), "{stderr}");
    let directory = tempfile::tempdir().unwrap();
    let plan = directory.path().join("plan.json");
    let output = run(
        &["plan", "testdata/seed-rr/intent.yaml", "--current", &source, "-o", plan.to_str().unwrap()],
        &[("ETCD_USERNAME", "root"), ("ETCD_PASSWORD", "s3cret-Pw")],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let saved = std::fs::read_to_string(&plan).unwrap();
    assert!(!saved.contains("s3cret-Pw") && !text(&output.stderr).contains("s3cret-Pw") && !text(&output.stdout).contains("s3cret-Pw"));
    // The library client, with the same credentials: a token is fetched and reused.
    let security = Security { credentials: Some(Credentials::new("root".into(), "s3cret-Pw".into())), ..Security::default() };
    let client =
        calplan::etcd::Client::connect(calplan::etcd::Address::parse(&source).unwrap(), &security, std::time::Duration::from_secs(5))
            .unwrap();
    assert!(client.get("/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool").unwrap().is_some());
}

/// etcd's tokens expire (`--auth-token-ttl`, five minutes by default); the client asks for a
/// new one when etcd says its token is no longer valid, so a long apply keeps working.
#[test]
fn an_expired_auth_token_is_renewed_real_etcd() {
    let etcd = Etcd::start_with(None, &["--auth-token-ttl", "1"]);
    let endpoints = format!("127.0.0.1:{}", etcd.port());
    for args in [&["user", "add", "root", "--new-user-password", "s3cret-Pw"][..], &["auth", "enable"][..]] {
        let output = Command::new("etcdctl").arg("--endpoints").arg(&endpoints).args(args).env("ETCDCTL_API", "3").output().unwrap();
        assert!(output.status.success(), "etcdctl {args:?}: {}", text(&output.stderr));
    }
    let security = Security { credentials: Some(Credentials::new("root".into(), "s3cret-Pw".into())), ..Security::default() };
    let address = calplan::etcd::Address::parse(&etcd.source()).unwrap();
    let client = calplan::etcd::Client::connect(address, &security, std::time::Duration::from_secs(5)).unwrap();
    client.put("/calplan-test/renewal", b"first").unwrap();
    // etcd extends a simple token's life on each use: let it lapse (it is checked every
    // second), then the next request must still succeed.
    std::thread::sleep(std::time::Duration::from_secs(4));
    client.put("/calplan-test/renewal", b"second").unwrap_or_else(|error| panic!("after the token lapsed: {error}"));
    assert_eq!(client.get("/calplan-test/renewal").unwrap().unwrap().value, b"second");
}
