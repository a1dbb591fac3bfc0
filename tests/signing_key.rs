//! The token signing key inside a real TLS client, in-process against the echo server: an RSA key
//! whose token cannot do PSS is held to TLS 1.2 with an explanation, and a slow token does not
//! stall the async runtime while it signs.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use certauth::tls::client_config::{self, Versions};
use certauth::tls::resolver::{ClientIdentity, TokenCertResolver};
use certauth::tls::signing_key::TokenSigningKey;
use certauth::token::sign::{Capabilities, KeyAlgorithm, KeySigner, Pkcs11Key, Scheme, SignError};
use certauth::x509::cert_info::CertInfo;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use secrecy::SecretString;
use support::echo_server::EchoServer;
use support::woodgrove::{provisioned_woodgrove, Woodgrove};

/// The SoftHSM module, loaded and initialised once for the whole test process: SoftHSM does not
/// take concurrent C_Initialize calls from two threads well.
fn module(w: &Woodgrove) -> &'static Pkcs11 {
    static MODULE: OnceLock<Pkcs11> = OnceLock::new();
    MODULE.get_or_init(|| {
        let pkcs11 = Pkcs11::new(w.module()).unwrap();
        pkcs11
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .unwrap();
        pkcs11
    })
}

/// A logged-in PKCS#11 key for the fixture certificate `name`, with the capabilities given.
fn token_key(
    w: &Woodgrove,
    name: &str,
    capabilities: impl FnOnce(Capabilities) -> Capabilities,
) -> (Arc<dyn KeySigner>, CertInfo) {
    let spec = w.spec.certificate(name).unwrap();
    let manifest = w.fixture.manifest.certificate(name).unwrap();
    let pkcs11 = module(w);
    let slot = pkcs11
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| pkcs11.get_token_info(*s).unwrap().label() == spec.token)
        .unwrap();
    let session = pkcs11.open_ro_session(slot).unwrap();
    match session.login(
        UserType::User,
        Some(&SecretString::from(w.pin(&spec.token))),
    ) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("{e}"),
    }
    let id = vec![u8::from_str_radix(&manifest.id, 16).unwrap()];
    let key = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(id),
        ])
        .unwrap()[0];
    let mechanisms = pkcs11.get_mechanism_list(slot).unwrap();
    let pem = std::fs::read(w.fixture.path(&manifest.file_pem)).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let info = CertInfo::from_der(&pem.contents).unwrap();
    let algorithm = match spec.key.bits() {
        256 => KeyAlgorithm::EcP256,
        384 => KeyAlgorithm::EcP384,
        bits => KeyAlgorithm::Rsa {
            bits: bits as usize,
        },
    };
    let signer = Pkcs11Key::new(
        spec.token.clone(),
        session,
        key,
        algorithm,
        capabilities(Capabilities::from_mechanisms(&mechanisms)),
        None,
    );
    (Arc::new(signer), info)
}

/// The Woodgrove CA certificates, so the client can send its intermediate.
fn chain_pool(server: &EchoServer) -> Vec<CertInfo> {
    client_config::read_pem_certificates(&server.chain_file)
        .unwrap()
        .iter()
        .map(|der| CertInfo::from_der(der).unwrap())
        .collect()
}

/// What the echo server saw of one GET through `client`.
fn echo_through(client: reqwest::Client, server: &EchoServer) -> serde_json::Value {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        client
            .get(&server.url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    })
}

fn client_for(
    identity: ClientIdentity,
    versions: Versions,
    server: &EchoServer,
) -> reqwest::Client {
    let roots = client_config::trusted_roots(Some(&server.ca_file)).unwrap();
    let resolver = Arc::new(TokenCertResolver::new(vec![identity]));
    let config = client_config::client_config(roots, resolver, versions).unwrap();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .unwrap()
}

#[test]
fn an_rsa_key_without_pss_is_held_to_tls12_and_the_user_is_told() {
    let w = provisioned_woodgrove();
    let server = EchoServer::start(w, &[]);
    // SoftHSM has PSS and raw RSA; take them away as a PKCS#1-only card would.
    let (signer, info) = token_key(w, "alice-rsa2048-mfa", |caps| Capabilities {
        rsa_pss: false,
        rsa_raw: false,
        sha256_rsa_pss: false,
        ..caps
    });
    let key = TokenSigningKey::new(signer, info.spki.clone());
    assert!(!key.can_do_tls13());
    let identity = ClientIdentity::new("Alice's RSA key".into(), &info, &chain_pool(&server), key);
    let (versions, note) = certauth::signin::versions_for(std::slice::from_ref(&identity));
    assert_eq!(versions, Versions::Tls12Only);
    assert_eq!(
        note.unwrap(),
        "Alice's RSA key: the token cannot make RSA-PSS signatures, which TLS 1.3 requires, so this \
         connection uses TLS 1.2 (where the certificate crosses the network unencrypted)"
    );
    let echo = echo_through(client_for(identity, versions, &server), &server);
    assert_eq!(echo["tlsVersion"], "TLSv1_2");
    assert_eq!(echo["client"]["sha256"], info.sha256);
}

/// A token that takes its time, as real smartcards do (100 ms to 1 s per RSA signature).
#[derive(Debug)]
struct SlowToken {
    inner: Arc<dyn KeySigner>,
    delay: Duration,
}

impl KeySigner for SlowToken {
    fn algorithm(&self) -> KeyAlgorithm {
        self.inner.algorithm()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn always_authenticate(&self) -> bool {
        self.inner.always_authenticate()
    }
    fn sign(&self, scheme: Scheme, message: &[u8]) -> Result<Vec<u8>, SignError> {
        std::thread::sleep(self.delay);
        self.inner.sign(scheme, message)
    }
}

#[test]
fn a_slow_token_does_not_stall_the_runtime() {
    let w = provisioned_woodgrove();
    let server = EchoServer::start(w, &[]);
    let (signer, info) = token_key(w, "bob-p256-rfc822", |caps| caps);
    let delay = Duration::from_millis(400);
    let slow = Arc::new(SlowToken {
        inner: signer,
        delay,
    });
    let key = TokenSigningKey::new(slow, info.spki.clone());
    let identity = ClientIdentity::new("Bob's slow card".into(), &info, &chain_pool(&server), key);
    let client = client_for(identity, Versions::Tls13And12, &server);

    // One worker thread: if signing blocked it, the ticker below could not run at all.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let ticks = Arc::new(AtomicUsize::new(0));
    let (elapsed, during) = runtime.block_on(async {
        let counter = ticks.clone();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        let before = ticks.load(Ordering::Relaxed);
        let started = Instant::now();
        // On the runtime's one worker, beside the ticker: that is where a blocking signer hurts.
        let url = server.url.clone();
        let echo: serde_json::Value =
            tokio::spawn(
                async move { client.get(&url).send().await.unwrap().json().await.unwrap() },
            )
            .await
            .unwrap();
        let elapsed = started.elapsed();
        let during = ticks.load(Ordering::Relaxed) - before;
        ticker.abort();
        assert_eq!(echo["client"]["sha256"], info.sha256);
        (elapsed, during)
    });
    assert!(
        elapsed >= delay,
        "the handshake waited for the token ({elapsed:?})"
    );
    // 400 ms of signing at one tick per 10 ms: well over half must get through.
    assert!(
        during >= 20,
        "only {during} ticks ran during a {elapsed:?} sign-in"
    );
}

#[test]
fn raw_rsa_with_host_side_pss_still_does_tls13() {
    let w = provisioned_woodgrove();
    let server = EchoServer::start(w, &["--tls13-only"]);
    // A card with raw RSA but no PSS mechanism (as PIV cards are, without OpenSC's emulation).
    let (signer, info) = token_key(w, "bob-rsa3072", |caps| Capabilities {
        rsa_pss: false,
        sha256_rsa_pss: false,
        ..caps
    });
    assert!(signer.capabilities().rsa_raw);
    let key = TokenSigningKey::new(signer, info.spki.clone());
    assert!(key.can_do_tls13());
    let identity = ClientIdentity::new(
        "Bob's RSA-3072 key".into(),
        &info,
        &chain_pool(&server),
        key,
    );
    let (versions, note) = certauth::signin::versions_for(std::slice::from_ref(&identity));
    assert_eq!((versions, note), (Versions::Tls13And12, None));
    let echo = echo_through(client_for(identity, versions, &server), &server);
    assert_eq!(echo["tlsVersion"], "TLSv1_3");
    assert_eq!(echo["client"]["sha256"], info.sha256);
}
