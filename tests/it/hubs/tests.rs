//! Self-tests of the fake hub and registry: the protocol details the pull tests rely on.

use super::hf::is_commit;
use super::*;
use axum::http::Method;
use reqwest::blocking::Client;
use serde_json::{json, Value};
use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// 1.5 MiB that are not all the same.
fn big(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

fn repo() -> HfRepo {
    HfRepo::new(
        "org/tiny",
        vec![
            ("config.json", b"{\"a\":1}\n".to_vec()),
            ("model.safetensors", big(300_000)),
            ("sub/tokenizer.json", big(LFS_MIN_SIZE)),
            ("README.md", b"hello\n".to_vec()),
        ],
    )
}

fn no_redirects() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

fn client() -> Client {
    Client::builder().no_proxy().build().unwrap()
}

fn header<'a>(r: &'a reqwest::blocking::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[test]
fn sha1_and_git_blob_ids() {
    assert_eq!(
        hex::encode(sha1(b"")),
        "da39a3ee5e6b4b0d3255bfef95601890afd80709"
    );
    assert_eq!(
        hex::encode(sha1(b"abc")),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_eq!(
        hex::encode(sha1(long)),
        "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
    );
    // `git hash-object` of an empty file and of "hello\n".
    assert_eq!(
        git_blob_sha1(b""),
        "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    );
    assert_eq!(
        git_blob_sha1(b"hello\n"),
        "ce013625030ba8dba906f756967f9e9ca394464a"
    );
}

#[test]
fn hub_revision_tree_and_small_files() {
    let repo = repo();
    let hub = HfHub::start(vec![repo.clone()]);
    let commit = hub.commit("org/tiny");
    assert!(is_commit(&commit), "{commit}");
    let c = client();

    let info: Value = c
        .get(format!("{}/api/models/org/tiny/revision/main", hub.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(info["id"], "org/tiny");
    assert_eq!(info["sha"], commit.as_str());
    let siblings: Vec<&str> = info["siblings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rfilename"].as_str().unwrap())
        .collect();
    assert_eq!(
        siblings,
        [
            "config.json",
            "model.safetensors",
            "sub/tokenizer.json",
            "README.md"
        ]
    );
    // The commit itself is a revision too.
    let r = c
        .get(format!("{}/api/models/org/tiny/revision/{commit}", hub.url))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);

    let tree: Vec<Value> = c
        .get(format!(
            "{}/api/models/org/tiny/tree/{commit}?recursive=true",
            hub.url
        ))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let by_path = |p: &str| tree.iter().find(|e| e["path"] == p).unwrap().clone();
    let readme = by_path("README.md");
    assert_eq!(readme["type"], "file");
    assert_eq!(readme["size"], 6);
    assert_eq!(readme["oid"], git_blob_sha1(b"hello\n"));
    assert!(readme.get("lfs").is_none());
    let weights = by_path("model.safetensors");
    let bytes = repo.file("model.safetensors").unwrap();
    assert_eq!(weights["lfs"]["oid"], sha256_hex(bytes));
    assert_eq!(weights["lfs"]["size"], bytes.len());
    assert_eq!(weights["size"], bytes.len());
    // The git oid of an LFS file is its pointer's.
    assert_ne!(weights["oid"], git_blob_sha1(bytes));
    // 1 MiB or more is LFS whatever the name.
    assert!(by_path("sub/tokenizer.json").get("lfs").is_some());
    assert!(by_path("config.json").get("lfs").is_none());
    assert_eq!(by_path("sub")["type"], "directory");
    assert_eq!(tree.len(), 5);
    // Not recursive: the top level only.
    let top: Vec<Value> = c
        .get(format!("{}/api/models/org/tiny/tree/main", hub.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(top.len(), 4);

    // A small file: 200 straight from the hub, ETag = git blob id, X-Repo-Commit.
    let url = format!("{}/org/tiny/resolve/main/README.md", hub.url);
    let r = no_redirects().get(&url).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "etag"),
        format!("\"{}\"", git_blob_sha1(b"hello\n"))
    );
    assert_eq!(header(&r, "x-repo-commit"), commit);
    assert_eq!(r.bytes().unwrap().as_ref(), b"hello\n");
    let r = c.head(&url).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-length"), "6");
    assert_eq!(r.bytes().unwrap().len(), 0);
    // Ranges work on the hub too.
    let r = c.get(&url).header("Range", "bytes=2-").send().unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(header(&r, "content-range"), "bytes 2-5/6");
    assert_eq!(r.bytes().unwrap().as_ref(), b"llo\n");
    assert_eq!(hub.bytes_served("README.md"), 6 + 4);

    // Folders in paths.
    let r = c
        .get(format!(
            "{}/org/tiny/resolve/{commit}/sub/tokenizer.json",
            hub.url
        ))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().unwrap().len(), LFS_MIN_SIZE);

    // Paged trees.
    hub.tree_page_size(2);
    let mut next = Some(format!(
        "{}/api/models/org/tiny/tree/main?recursive=true",
        hub.url
    ));
    let mut all = Vec::new();
    let mut pages = 0;
    while let Some(url) = next.take() {
        let r = c.get(&url).send().unwrap();
        next = r.headers().get("link").map(|l| {
            let l = l.to_str().unwrap();
            assert!(l.ends_with(">; rel=\"next\""), "{l}");
            l[1..l.find('>').unwrap()].to_owned()
        });
        all.extend(r.json::<Vec<Value>>().unwrap());
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(all, tree);
}

#[test]
fn hub_errors_carry_codes() {
    let hub = HfHub::start(vec![
        repo(),
        HfRepo::new("org/gated", vec![("a.txt", b"x".to_vec())]).gated("hf_right"),
    ]);
    let c = client();
    let check = |r: reqwest::blocking::Response, status: u16, code: &str| {
        assert_eq!(r.status(), status);
        assert_eq!(header(&r, "x-error-code"), code);
        let body: Value = r.json().unwrap();
        assert!(body["error"].is_string(), "{body}");
    };
    check(
        c.get(format!("{}/api/models/org/nope/revision/main", hub.url))
            .send()
            .unwrap(),
        401,
        "RepoNotFound",
    );
    check(
        c.get(format!("{}/org/nope/resolve/main/a.txt", hub.url))
            .bearer_auth("hf_any")
            .send()
            .unwrap(),
        404,
        "RepoNotFound",
    );
    check(
        c.get(format!("{}/api/models/org/tiny/revision/v2", hub.url))
            .send()
            .unwrap(),
        404,
        "RevisionNotFound",
    );
    check(
        c.get(format!("{}/org/tiny/resolve/main/missing.bin", hub.url))
            .send()
            .unwrap(),
        404,
        "EntryNotFound",
    );
    let gated = format!("{}/org/gated/resolve/main/a.txt", hub.url);
    check(c.get(&gated).send().unwrap(), 401, "GatedRepo");
    check(
        c.get(&gated).bearer_auth("hf_wrong").send().unwrap(),
        403,
        "GatedRepo",
    );
    check(
        c.get(format!("{}/api/models/org/gated/revision/main", hub.url))
            .send()
            .unwrap(),
        401,
        "GatedRepo",
    );
    let r = c.get(&gated).bearer_auth("hf_right").send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().unwrap().as_ref(), b"x");
}

#[test]
fn lfs_files_redirect_to_a_cdn_that_serves_ranges_and_never_sees_the_token() {
    let repo = repo().gated("hf_tok");
    let bytes = repo.file("model.safetensors").unwrap().to_vec();
    let sha = sha256_hex(&bytes);
    let hub = HfHub::start(vec![repo]);
    let commit = hub.commit("org/tiny");
    let url = format!("{}/org/tiny/resolve/main/model.safetensors", hub.url);

    for method in [Method::HEAD, Method::GET] {
        let r = no_redirects()
            .request(method, &url)
            .bearer_auth("hf_tok")
            .send()
            .unwrap();
        assert_eq!(r.status(), 302);
        assert_eq!(header(&r, "x-linked-etag"), format!("\"{sha}\""));
        assert_eq!(header(&r, "x-linked-size"), bytes.len().to_string());
        assert_eq!(header(&r, "x-repo-commit"), commit);
        assert_eq!(header(&r, "etag"), format!("\"{sha}\""));
        let location = header(&r, "location").to_owned();
        assert!(
            location.starts_with(&format!("{}/cdn/{sha}?sig=", hub.cdn_url)),
            "{location}"
        );
        assert_ne!(hub.cdn_url, hub.url);
    }
    let location = no_redirects()
        .get(&url)
        .bearer_auth("hf_tok")
        .send()
        .unwrap()
        .headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();

    let c = client();
    let r = c.get(&location).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-length"), bytes.len().to_string());
    assert_eq!(r.bytes().unwrap().as_ref(), bytes.as_slice());
    let r = c
        .get(&location)
        .header("Range", "bytes=1000-")
        .send()
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        header(&r, "content-range"),
        format!("bytes 1000-{}/{}", bytes.len() - 1, bytes.len())
    );
    assert_eq!(r.bytes().unwrap().as_ref(), &bytes[1000..]);
    let r = c
        .get(&location)
        .header("Range", "bytes=10-19")
        .send()
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().unwrap().as_ref(), &bytes[10..20]);
    let r = c
        .get(&location)
        .header("Range", format!("bytes={}-", bytes.len()))
        .send()
        .unwrap();
    assert_eq!(r.status(), 416);
    // The signature is required, and must be one the hub handed out for this object.
    let bare = location.split('?').next().unwrap();
    assert_eq!(c.get(bare).send().unwrap().status(), 403);
    assert_eq!(
        c.get(format!("{bare}?sig=forged")).send().unwrap().status(),
        403
    );

    // A client that follows the redirect (reqwest drops the token across hosts) ...
    hub.clear_hits();
    let r = c.get(&url).bearer_auth("hf_tok").send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().unwrap().as_ref(), bytes.as_slice());
    // ... is seen sending the token to the hub and not to the CDN.
    let hits = hub.hits();
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert_eq!(
        (hits[0].listener, hits[0].status, hits[0].authorization),
        (Listener::Hub, 302, true)
    );
    assert_eq!(
        (hits[1].listener, hits[1].status, hits[1].authorization),
        (Listener::Cdn, 200, false)
    );
    assert_eq!(hits[1].file.as_deref(), Some("org/tiny/model.safetensors"));
    assert_eq!(hits[1].bytes, bytes.len() as u64);
    assert_eq!(hub.bytes_served("model.safetensors"), bytes.len() as u64);
    assert_eq!(
        hub.bytes_served("org/tiny/model.safetensors"),
        bytes.len() as u64
    );
    // A client that forwards it anyway is caught.
    let r = c.get(&location).bearer_auth("hf_tok").send().unwrap();
    assert_eq!(r.status(), 200);
    assert!(hub.hits().last().unwrap().authorization);
}

#[test]
fn drop_after_cuts_the_body_once_and_ranges_resume() {
    let repo = repo();
    let bytes = repo.file("model.safetensors").unwrap().to_vec();
    let hub = HfHub::start(vec![repo]);
    let url = format!("{}/org/tiny/resolve/main/model.safetensors", hub.url);
    let c = client();

    // A HEAD does not use up the fault.
    hub.drop_after("model.safetensors", 100_000);
    assert_eq!(c.head(&url).send().unwrap().status(), 200);
    let mut r = c.get(&url).send().unwrap();
    assert_eq!(r.status(), 200);
    let mut got = Vec::new();
    let err = r.read_to_end(&mut got).unwrap_err();
    assert_eq!(got.len(), 100_000, "{err}");
    assert_eq!(got, bytes[..100_000]);
    assert_eq!(hub.bytes_served("model.safetensors"), 100_000);

    // Once: the next request resumes from where the cut left off and completes.
    let r = c
        .get(&url)
        .header("Range", format!("bytes={}-", got.len()))
        .send()
        .unwrap();
    assert_eq!(r.status(), 206);
    got.extend_from_slice(&r.bytes().unwrap());
    assert_eq!(got, bytes);
    assert_eq!(hub.bytes_served("model.safetensors"), bytes.len() as u64);
    let cdn: Vec<u64> = hub
        .hits_for("model.safetensors")
        .iter()
        .filter(|h| h.listener == Listener::Cdn && h.method == "GET")
        .map(|h| h.bytes)
        .collect();
    assert_eq!(cdn, [100_000, bytes.len() as u64 - 100_000]);

    // On a small file straight from the hub too, and with 0 bytes.
    hub.drop_after("config.json", 0);
    let mut r = c
        .get(format!("{}/org/tiny/resolve/main/config.json", hub.url))
        .send()
        .unwrap();
    let mut got = Vec::new();
    assert!(r.read_to_end(&mut got).is_err());
    assert!(got.is_empty());
}

#[test]
fn corrupt_fail_status_and_slow() {
    let repo = repo();
    let bytes = repo.file("model.safetensors").unwrap().to_vec();
    let hub = HfHub::start(vec![repo]);
    let url = format!("{}/org/tiny/resolve/main/model.safetensors", hub.url);
    let c = client();

    hub.corrupt("model.safetensors");
    let r = c.get(&url).send().unwrap();
    let got = r.bytes().unwrap();
    assert_eq!(got.len(), bytes.len());
    let diff: Vec<usize> = (0..bytes.len()).filter(|&i| got[i] != bytes[i]).collect();
    assert_eq!(diff, [bytes.len() / 2]);
    // Persistent, and consistent across ranges.
    let r = c
        .get(&url)
        .header("Range", format!("bytes={}-", bytes.len() / 2))
        .send()
        .unwrap();
    assert_eq!(r.bytes().unwrap()[0], got[bytes.len() / 2]);
    hub.clear("model.safetensors");
    assert_eq!(c.get(&url).send().unwrap().bytes().unwrap(), bytes);

    hub.fail_status("model.safetensors", 500);
    for _ in 0..2 {
        let r = c.get(&url).send().unwrap();
        assert_eq!(r.status(), 500);
    }
    assert_eq!(c.head(&url).send().unwrap().status(), 500);
    hub.clear_faults();
    assert_eq!(c.get(&url).send().unwrap().status(), 200);
    hub.fail_status_times("README.md", 503, 1);
    let readme = format!("{}/org/tiny/resolve/main/README.md", hub.url);
    assert_eq!(c.get(&readme).send().unwrap().status(), 503);
    assert_eq!(c.get(&readme).send().unwrap().status(), 200);

    // 20 KB at 100 KB/s: about 0.2 s.
    hub.slow(100_000);
    let start = std::time::Instant::now();
    let r = c.get(&url).header("Range", "bytes=0-19999").send().unwrap();
    assert_eq!(r.bytes().unwrap().len(), 20_000);
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(150), "{took:?}");
    hub.slow(0);
}

#[test]
fn from_dir_follows_symlinks_and_takes_the_commit_from_the_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let snap = tmp.path().join("snapshots").join(commit);
    std::fs::create_dir_all(snap.join("sub")).unwrap();
    std::fs::create_dir_all(tmp.path().join("blobs")).unwrap();
    std::fs::write(tmp.path().join("blobs/abc"), b"linked").unwrap();
    std::os::unix::fs::symlink("../../blobs/abc", snap.join("config.json")).unwrap();
    std::fs::write(snap.join("sub/x.txt"), b"x").unwrap();
    let repo = HfRepo::from_dir("o/n", &snap);
    assert_eq!(repo.commit, commit);
    assert_eq!(
        repo.files,
        [
            ("config.json".to_owned(), b"linked".to_vec()),
            ("sub/x.txt".to_owned(), b"x".to_vec())
        ]
    );
    // Not a commit: an automatic one.
    assert!(HfRepo::from_dir("o/n", &snap.join("sub")).commit.is_empty());

    // The real fixtures, when they have been built.
    let hub_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/fixtures/hub/models--ollmlx-test--tiny-llama/snapshots");
    let Some(Ok(snap)) = std::fs::read_dir(&hub_dir).ok().and_then(|mut d| d.next()) else {
        eprintln!("skipping the fixture half: no {}", hub_dir.display());
        return;
    };
    let repo = HfRepo::from_dir("ollmlx-test/tiny-llama", &snap.path());
    assert!(is_commit(&repo.commit));
    let weights = repo.file("model.safetensors").unwrap().to_vec();
    assert!(repo.file("config.json").is_some());
    let hub = HfHub::start(vec![repo.clone()]);
    let got = client()
        .get(format!(
            "{}/ollmlx-test/tiny-llama/resolve/{}/model.safetensors",
            hub.url, repo.commit
        ))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(got.as_ref(), weights.as_slice());
}

#[test]
fn registry_manifests_and_blobs() {
    let gguf = big(200_000);
    let model = RegistryModel::new(
        "library/tiny:latest",
        vec![
            (MODEL_LAYER, gguf.clone()),
            (
                "application/vnd.ollama.image.template",
                b"{{ .Prompt }}".to_vec(),
            ),
        ],
    );
    assert_eq!(
        (
            model.namespace.as_str(),
            model.model.as_str(),
            model.tag.as_str()
        ),
        ("library", "tiny", "latest")
    );
    let reg = Registry::start(vec![model.clone()]);
    assert_eq!(
        reg.name(&model),
        format!("{}/library/tiny:latest", reg.host_port)
    );
    let c = client();

    let r = c
        .get(format!("{}/v2/library/tiny/manifests/latest", reg.url))
        .header("Accept", MANIFEST_V2)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), MANIFEST_V2);
    let body = r.bytes().unwrap();
    assert_eq!(body.as_ref(), model.manifest().as_slice());
    let m: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(m["schemaVersion"], 2);
    assert_eq!(m["config"]["mediaType"], CONFIG_V1);
    assert_eq!(
        m["config"]["digest"],
        sha256_digest(REGISTRY_CONFIG.as_bytes())
    );
    assert_eq!(m["config"]["size"], REGISTRY_CONFIG.len());
    assert_eq!(m["layers"][0]["mediaType"], MODEL_LAYER);
    assert_eq!(m["layers"][0]["digest"], sha256_digest(&gguf));
    assert_eq!(m["layers"][0]["size"], gguf.len());
    assert_eq!(m["layers"].as_array().unwrap().len(), 2);

    let unknown = c
        .get(format!("{}/v2/library/nope/manifests/latest", reg.url))
        .send()
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.json::<Value>().unwrap(),
        json!({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})
    );
    let other_tag = c
        .get(format!("{}/v2/library/tiny/manifests/q4", reg.url))
        .send()
        .unwrap();
    assert_eq!(other_tag.status(), 404);

    let digest = sha256_digest(&gguf);
    let blob = format!("{}/v2/library/tiny/blobs/{digest}", reg.url);
    let r = c.head(&blob).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-length"), gguf.len().to_string());
    let r = no_redirects().get(&blob).send().unwrap();
    assert_eq!(r.status(), 307);
    let location = header(&r, "location").to_owned();
    assert!(
        location.starts_with(&format!("{}/cdn/", reg.cdn_url)),
        "{location}"
    );
    assert!(location.contains("?sig="), "{location}");
    // Ollama's parts: closed ranges on the CDN URL.
    let r = c
        .get(&location)
        .header("Range", "bytes=100-199")
        .send()
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        header(&r, "content-range"),
        format!("bytes 100-199/{}", gguf.len())
    );
    assert_eq!(r.bytes().unwrap().as_ref(), &gguf[100..200]);
    // Following the redirect gets the whole blob.
    assert_eq!(c.get(&blob).send().unwrap().bytes().unwrap(), gguf);
    assert_eq!(reg.bytes_served(&digest), 100 + gguf.len() as u64);
    let bare = location.split('?').next().unwrap();
    assert_eq!(c.get(bare).send().unwrap().status(), 403);
    let r = c
        .head(format!(
            "{}/v2/library/tiny/blobs/sha256:{}",
            reg.url,
            "0".repeat(64)
        ))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);

    // Faults by digest.
    reg.drop_after(&digest, 5000);
    let mut r = c.get(&blob).send().unwrap();
    let mut got = Vec::new();
    assert!(r.read_to_end(&mut got).is_err());
    assert_eq!(got.len(), 5000);
    reg.fail_status(&model.key(), 500);
    let r = c
        .get(format!("{}/v2/library/tiny/manifests/latest", reg.url))
        .send()
        .unwrap();
    assert_eq!(r.status(), 500);
    let hits = reg.hits();
    assert!(hits
        .iter()
        .all(|h| h.listener == Listener::Hub || h.path.starts_with("/cdn/")));
}

#[test]
fn dropping_a_server_closes_it() {
    let hub = HfHub::start(vec![repo()]);
    let url = format!("{}/api/models/org/tiny/revision/main", hub.url);
    let c = client();
    assert_eq!(c.get(&url).send().unwrap().status(), 200);
    // Even with a download in flight.
    hub.slow(1000);
    let mut r = c
        .get(format!(
            "{}/org/tiny/resolve/main/model.safetensors",
            hub.url
        ))
        .send()
        .unwrap();
    let mut first = [0u8; 10];
    r.read_exact(&mut first).unwrap();
    drop(hub);
    assert!(c.get(&url).send().is_err());
    let mut rest = Vec::new();
    assert!(r.read_to_end(&mut rest).is_err());
}
