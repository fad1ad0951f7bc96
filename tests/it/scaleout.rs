//! Several ollmlx nodes behind a standard load balancer (docs/scale-out.md): nginx from Debian's
//! packages running `packaging/nginx/ollmlx-nodes.conf` itself, on loopback with two daemons.
//! Each conversation stays on one node (its prefix cache hits on every later turn), clients
//! without a conversation id stay on one node by address, and a node that goes down is skipped.

use crate::monitoring::{scrape, value};
use crate::support::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn nginx() -> Option<PathBuf> {
    let found = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("OLLMLX_REQUIRE_TOOLS").is_none(),
            "OLLMLX_REQUIRE_TOOLS is set but nginx is missing (.ci/run installs it)"
        );
        eprintln!("skipping: nginx is not installed (apt-get install nginx-light)");
    }
    found
}

/// nginx in the foreground on `dir`, running the shipped config with its upstream pointed at
/// `nodes` and listening on a free port; returns the process and the balancer's URL.
/// nginx's master process; dropping it stops nginx whole. SIGTERM makes the master end its
/// workers (a SIGKILLed master leaves them running, still listening).
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn balancer(binary: &Path, dir: &Path, nodes: &[&str]) -> (Nginx, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let shipped = std::fs::read_to_string(repo_root().join("packaging/nginx/ollmlx-nodes.conf"))
        .unwrap()
        .replace("127.0.0.1:11435", nodes[0])
        .replace("127.0.0.1:11436", nodes[1])
        .replace(
            "listen 127.0.0.1:11434",
            &format!("listen 127.0.0.1:{port}"),
        );
    std::fs::write(dir.join("nodes.conf"), shipped).unwrap();
    let d = dir.display();
    let main = format!(
        "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           include {d}/nodes.conf;\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), main).unwrap();
    let nginx = Nginx(
        Command::new(binary)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not start: {:?}",
            std::fs::read_to_string(dir.join("error.log"))
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (nginx, url)
}

/// One chat turn through the balancer: the reply.
fn turn(url: &str, conversation: Option<&str>, messages: &[Value]) -> String {
    let client = reqwest::blocking::Client::new();
    let mut req = client.post(format!("{url}/api/chat")).json(&json!({
        "model": TINY, "messages": messages, "stream": false,
        "options": {"num_predict": 8, "temperature": 0},
    }));
    if let Some(c) = conversation {
        req = req.header("X-Conversation-Id", c);
    }
    let r = req.send().unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().unwrap();
    v["message"]["content"].as_str().unwrap().to_owned()
}

/// Chat requests each node has answered.
fn chats(nodes: &[&TestServer]) -> Vec<f64> {
    let route = [("route", "/api/chat"), ("status", "200")];
    nodes
        .iter()
        .map(|n| value(&scrape(n), "ollmlx_http_requests_total", &route))
        .collect()
}

fn conversation(url: &str, id: Option<&str>, turns: usize) {
    let mut messages = vec![
        json!({"role": "system", "content": "You keep the lighthouse lamp lit and answer briefly. ".repeat(20)}),
    ];
    for i in 0..turns {
        messages
            .push(json!({"role": "user", "content": format!("Question {i}: how is the lamp?")}));
        let reply = turn(url, id, &messages);
        messages.push(json!({"role": "assistant", "content": reply}));
    }
}

#[test]
fn conversations_stay_on_one_node_behind_nginx_and_a_node_down_is_skipped() {
    let Some(nginx) = nginx() else { return };
    let (Some(mut a), Some(b)) = (server(&[]), server(&[])) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let hosts: Vec<String> = [&a, &b]
        .iter()
        .map(|s| s.url.trim_start_matches("http://").to_owned())
        .collect();
    let (lb, url) = balancer(&nginx, dir.path(), &[&hosts[0], &hosts[1]]);

    // Two conversations by id: each one's three turns reach a single node, whose prefix cache
    // then serves turns 2 and 3.
    for id in ["alpha", "bravo"] {
        let before = chats(&[&a, &b]);
        conversation(&url, Some(id), 3);
        let after = chats(&[&a, &b]);
        let moved: Vec<f64> = after.iter().zip(&before).map(|(x, y)| x - y).collect();
        assert!(
            moved == [3.0, 0.0] || moved == [0.0, 3.0],
            "{id}: {moved:?}"
        );
    }
    let hits: f64 = [&a, &b]
        .iter()
        .map(|n| value(&scrape(n), "ollmlx_prefix_cache_hits_total", &[]))
        .sum();
    assert!(hits >= 4.0, "later turns reuse the cache: {hits} hits");

    // No conversation id: one node per client address.
    let before = chats(&[&a, &b]);
    for _ in 0..3 {
        turn(&url, None, &[json!({"role": "user", "content": "hi"})]);
    }
    let after = chats(&[&a, &b]);
    let moved: Vec<f64> = after.iter().zip(&before).map(|(x, y)| x - y).collect();
    assert!(moved == [3.0, 0.0] || moved == [0.0, 3.0], "{moved:?}");

    // A node goes down: every conversation is answered by the other one.
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let before = chats(&[&b])[0];
    for id in ["alpha", "bravo", "charlie"] {
        turn(
            &url,
            Some(id),
            &[json!({"role": "user", "content": "still there?"})],
        );
    }
    assert_eq!(chats(&[&b])[0] - before, 3.0);
    drop(lb);
}
